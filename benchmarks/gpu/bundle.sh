#!/usr/bin/env bash
# Packs what the GPU benchmarks need on a GPU machine that has PyTorch and CUDA but no network
# (and no poppler): the pinned wheels such an image usually lacks, built for its Python
# (GPU_PYTHON, default 3.12), and poppler's pdfinfo and pdftoppm with the libraries they load
# (glibc and libstdc++ excepted: the target's own, which must be at least as new as this
# machine's) and three fonts. Writes gpu-bundle/ (git-ignored); copy the repository with it to
# the GPU machine and run benchmarks/gpu/run.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=${BUNDLE:-gpu-bundle}
python=${PYTHON:-.venv/bin/python}
rm -rf "$bundle"
mkdir -p "$bundle/wheels" "$bundle/poppler/bin" "$bundle/poppler/lib" "$bundle/fonts"

# The engine's pins that a CUDA PyTorch image does not carry (its torch, numpy, pillow, numba,
# accelerate and tokenizers serve as they are); tantivy indexes the pages' words in the latency
# run.
pins=$(grep -hE '^(transformers|colpali-engine|peft|qwen-vl-utils|pypdf|tantivy)(\[[a-z]+\])?==' \
    requirements.txt requirements-dev.txt | sed 's/\[[a-z]*\]//')
platforms=()
for tag in manylinux_2_28 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
# shellcheck disable=SC2086  # one word per pin
"$python" -m pip download -q --no-deps --only-binary=:all: --implementation cp \
    --python-version "${GPU_PYTHON:-3.12}" "${platforms[@]}" -d "$bundle/wheels" $pins 2>&1 |
    { grep -v "is ignored: it is neither a file nor a directory" || true; }

for tool in pdfinfo pdftoppm; do
    cp "$(command -v "$tool")" "$bundle/poppler/bin/"
done
ldd "$bundle"/poppler/bin/* | awk '$3 ~ /^\// { print $3 }' | sort -u |
    grep -vE '/(libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' |
    while read -r library; do cp -L "$library" "$bundle/poppler/lib/"; done

# Substitutes for the PDF base fonts (Helvetica, Times, Courier) when a file does not embed them.
for family in sans-serif serif monospace; do
    cp -L "$(fc-match -f '%{file}' "$family")" "$bundle/fonts/"
done
cat > "$bundle/fonts/fonts.conf" <<'CONF'
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig><dir prefix="relative">.</dir><cachedir>/tmp/gpu-bundle-fontcache</cachedir></fontconfig>
CONF

echo "$bundle: $(du -sh "$bundle" | cut -f1) ($(ls "$bundle/wheels" | tr '\n' ' '))"
