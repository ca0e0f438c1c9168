"""bf16 against fp32 for the models on this machine: ``python -m benchmarks.dtype``.

    python -m benchmarks.dtype [--pages 4] [--new-tokens 32] [--out FILE]

``RAG_DTYPE=auto`` computes in bf16 on a CPU with bf16 instructions
(``rag.models.checkpoints.cpu_has_bf16``) and in fp32 on other CPUs. This measures both
dtypes in one run, on the same random-weight models at Qwen2-VL-2B's real widths with few
layers (random weights cost the same compute as trained ones):

- the retriever: the mid-size ColQwen2 of ``benchmarks.indexing`` (2 + 2 layers, 256 visual
  tokens a page) encoding ``--pages`` letter pages in one batch, and the agreement of the bf16
  page vectors with fp32's (mean cosine per token);
- the answerer: a Qwen2-VL at the same widths (4 text + 2 vision layers), prefilling one page
  and a question, then writing ``--new-tokens`` tokens greedily (both timed inside one
  ``generate`` call, from the moments its streamer receives the prompt and each token).

Each figure is the median of ``--repeats`` runs after a warm-up. ``run`` measures (a
``Result``), ``report`` writes it as Markdown.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from benchmarks import cpu_dtype, offline
from benchmarks.report import header, machine, parser, run_and_publish, table

DTYPES = ("float32", "bfloat16")
RESULTS = "results-dtype.md"


@dataclass
class Result:
    args: argparse.Namespace
    machine: str
    bf16_instructions: bool  # the CPU has them (rag.models.checkpoints.cpu_has_bf16)
    auto: str  # the dtype RAG_DTYPE=auto picks here
    encoder: list[tuple[str, float, float]]  # (dtype, seconds per batch, cosine with fp32)
    answerer: list[tuple[str, float, float]]  # (dtype, prefill seconds, seconds per token)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("dtype", __doc__, RESULTS)
    arguments.add_argument("--pages", type=int, default=4)
    arguments.add_argument("--new-tokens", type=int, default=32)
    arguments.add_argument("--repeats", type=int, default=3)
    arguments.add_argument(
        "--models-dir", type=Path, default=Path(tempfile.gettempdir()) / "rag-bench"
    )
    args = arguments.parse_args(argv)
    if args.new_tokens < 2:
        arguments.error("--new-tokens must be at least 2 (decoding is timed after the first)")
    return args


def main(argv: list[str] | None = None) -> Result:
    return run_and_publish(argv, parse_args, run, report, RESULTS)


def run(args: argparse.Namespace) -> Result:
    """Both models in both dtypes, on the same letter page."""
    from rag.models.checkpoints import cpu_has_bf16

    offline()
    page = Image.new("RGB", (1224, 1584), "white")  # a letter page at 144 DPI
    encoder = retriever_rows(args, page)
    answerer = answerer_rows(args, page)
    return Result(args, machine(), cpu_has_bf16(), cpu_dtype(), encoder, answerer)


def retriever_rows(args: argparse.Namespace, page: Image.Image) -> list[tuple[str, float, float]]:
    """(dtype, seconds per batch, agreement with fp32) for the mid-size ColQwen2."""
    import torch

    from devtools.tiny_models.qwen import build_colqwen2_mid
    from rag.config import Settings
    from rag.models.retriever import Retriever

    folder = str(build_colqwen2_mid(args.models_dir))
    rows, reference = [], None
    for dtype in DTYPES:
        retriever = Retriever.load(Settings(retriever=folder, device="cpu", dtype=dtype))
        inputs = retriever.preprocess([page] * args.pages)
        seconds = _median(partial(retriever.encode, inputs), args.repeats)
        vectors = torch.cat(retriever.encode(inputs))
        reference = vectors if reference is None else reference
        agreement = torch.nn.functional.cosine_similarity(vectors, reference, dim=-1).mean()
        rows.append((dtype, seconds, agreement.item()))
    return rows


def answerer_rows(args: argparse.Namespace, page: Image.Image) -> list[tuple[str, float, float]]:
    """(dtype, prefill seconds, seconds per written token) for a mid-size Qwen2-VL."""
    import torch

    from devtools.tiny_models.common import seed
    from devtools.tiny_models.qwen import qwen2_vl_at_scale

    seed(0)
    model, processor = qwen2_vl_at_scale(text_layers=4, vision_depth=2)
    prompt = "<|vision_start|><|image_pad|><|vision_end|>What was the revenue in 2024?"
    inputs = processor(text=[prompt], images=[page], return_tensors="pt")
    rows = []
    for dtype in DTYPES:
        model = model.to(getattr(torch, dtype))
        fed = {k: v.to(model.dtype) if v.is_floating_point() else v for k, v in inputs.items()}
        steps = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
        timings = []
        for _ in range(args.repeats + 1):  # the first is a warm-up
            clock = _TokenClock()
            with torch.inference_mode():
                model.generate(**fed, **steps, do_sample=False, streamer=clock)
            timings.append(clock.split())
        prefills, per_token = zip(*timings[1:], strict=True)
        rows.append((dtype, statistics.median(prefills), statistics.median(per_token)))
    return rows


class _TokenClock:
    """A ``generate`` streamer that notes when the prompt and each new token arrive, so one
    call times both the prefill (prompt to first token) and the decoding (each token after)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, _tokens) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass

    def split(self) -> tuple[float, float]:
        """(prefill seconds, seconds per token after the first)."""
        prompt, first, last = self.times[0], self.times[1], self.times[-1]
        return first - prompt, (last - first) / (len(self.times) - 2)


def _median(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(result: Result) -> str:
    args, encoder, answerer = result.args, result.encoder, result.answerer
    base = {dtype: seconds for dtype, seconds, _ in encoder}["float32"]
    prefill_base = answerer[0][1]
    token_base = answerer[0][2]
    lines = header(
        "bf16 against fp32 on this CPU",
        f"command: `python -m benchmarks.dtype --pages {args.pages} "
        f"--new-tokens {args.new_tokens} --repeats {args.repeats}`",
        f"machine: {result.machine}; bf16 instructions: "
        f"{'yes' if result.bf16_instructions else 'no'}; RAG_DTYPE=auto picks {result.auto}",
        f"median of {args.repeats} runs after a warm-up; x: speed against fp32",
    )
    encoding = [(d, f"{s:.2f}", f"{base / s:.2f}", f"{a:.5f}") for d, s, a in encoder]
    answering = [
        (d, f"{p:.2f}", f"{prefill_base / p:.2f}", f"{t * 1000:.0f}", f"{token_base / t:.2f}")
        for d, p, t in answerer
    ]
    lines += [
        "",
        f"Retriever (mid-size ColQwen2, a batch of {args.pages} letter pages):",
        "",
        *table(encoding, ("dtype", "seconds", "x", "agreement with fp32"), "lrrr"),
        "",
        f"Answerer (mid-size Qwen2-VL, one page and a question, {args.new_tokens} tokens):",
        "",
        *table(answering, ("dtype", "prefill s", "x", "ms per token", "x"), "lrrrr"),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
