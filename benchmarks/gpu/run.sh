#!/usr/bin/env bash
# On the GPU machine, from a copy of the repository holding gpu-bundle/ (benchmarks/gpu/bundle.sh):
#
#   benchmarks/gpu/run.sh tests      # versions, then the engine's tests, run on the GPU
#   benchmarks/gpu/run.sh indexing   # python -m benchmarks.indexing --full-size --pages 64
#   benchmarks/gpu/run.sh search     # python -m benchmarks.search --pages 10000 (adds the GPU row)
#   benchmarks/gpu/run.sh latency    # python -m benchmarks.latency --device cuda --profiles gpu,cpu
#   benchmarks/gpu/run.sh eval       # app.py eval on real checkpoints: the generated corpus in every
#                                    # mode with answers and the judge; VIDORE=FOLDER adds ViDoRe V3
#
# Installs the bundle's wheels into /tmp/gpu-site with no network (ahead of the image's own
# packages on PYTHONPATH), puts its poppler first on PATH and writes results to $OUT (default
# gpu-results/). Each step fits in well under ten minutes on an H100.
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=$PWD/${BUNDLE:-gpu-bundle}
results=${OUT:-$PWD/gpu-results}
python=${PYTHON:-python3}
mkdir -p "$results"
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu-site "$bundle"/wheels/*.whl
export PYTHONPATH=/tmp/gpu-site:$PWD
export PATH=$bundle/poppler/bin:$PATH
export LD_LIBRARY_PATH=$bundle/poppler/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export FONTCONFIG_FILE=$bundle/fonts/fonts.conf
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

case ${1:-tests} in
tests)
    # Settings' device "auto" picks CUDA, so these run the retriever, the answerer, the auto
    # batch probe, heatmaps and exact search on the GPU, in bf16.
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$python" -c "from rag.models.torch_compat import ensure_torchvision; ensure_torchvision()
from importlib.metadata import version
import torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers',
      version('transformers'), 'colpali-engine', version('colpali-engine'),
      'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported())"
    pdftoppm -v 2>&1 | head -1
    TINY_MODELS_DIR=/tmp/gpu-tiny-models "$python" -m pytest -q -p no:cacheprovider \
        tests/test_retriever.py tests/test_heatmaps.py tests/test_generator.py \
        tests/test_scoring.py tests/test_index.py tests/test_staged.py tests/test_pooling.py \
        tests/test_binary.py tests/test_models.py tests/test_pdf.py tests/test_ahead.py \
        tests/test_page_cache.py 2>&1 | tee "$results/gpu-tests.log"
    ;;
indexing)
    "$python" -m benchmarks.indexing --full-size --pages "${PAGES:-64}" \
        --out "$results/results-indexing-full-size.md"
    ;;
search)
    "$python" -m benchmarks.search --pages "${PAGES:-10000}" --out "$results/results-gpu.md"
    ;;
latency)
    # Time to answer at published sizes on the GPU: the README's GPU plan, measured.
    "$python" -m benchmarks.latency --device cuda --profiles gpu,cpu --pages "${PAGES:-10}" \
        --out "$results/results-latency-gpu.md"
    ;;
eval)
    # Real checkpoints (RAG_RETRIEVER / RAG_GENERATOR: the gpu profile's by default) must be in
    # the Hugging Face cache or local folders: there is no network here (docs/evaluation.md).
    work=$(mktemp -d)
    "$python" -m tests.helpers.evaluation "$work"
    "$python" app.py index "$work/facts.pdf" --data-dir "$work/data" --profile gpu
    "$python" app.py eval "$work/questions.jsonl" --data-dir "$work/data" --profile gpu \
        --answers --judge --report "$results/eval-facts" | tee "$results/eval-facts.txt"
    if [ -n "${VIDORE:-}" ]; then  # a local ViDoRe V3 folder: leaderboard-comparable nDCG@10
        "$python" app.py eval --vidore "$VIDORE" --index-corpus --index-mode exact \
            --data-dir "$work/vidore" --profile gpu --modes off,text,rrf \
            --report "$results/eval-vidore" | tee "$results/eval-vidore.txt"
    fi
    ;;
*)
    echo "usage: benchmarks/gpu/run.sh tests|indexing|search|latency|eval" >&2
    exit 2
    ;;
esac
