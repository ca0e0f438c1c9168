"""Indexing throughput: a naive one-page-at-a-time loop against our pipeline, in one run.

    python -m benchmarks.indexing [--pages 24] [--models tiny,mid] [--batch-size 4]
                                  [--page-workers 0] [--memory 50,500]
                                  [--out FILE]

A synthetic PDF of ``--pages`` pages (the sample PDFs' pages, cycled) is indexed twice per
model, into fresh LocalIndex folders:

- naive: render one page (one poppler call), decode and preprocess it, encode it alone, append;
  write the document at the end. Every stage waits for the one before.
- pipeline: ``Pipeline.add_file`` with ``--batch-size`` pages per forward pass, poppler and the
  processor working batches ahead of the encoder on ``--page-workers`` threads each (0: auto).
- pipeline, encoder skipped: the same with an encoder that returns at once, i.e. how many pages
  per second rendering and preprocessing can feed an encoder (what a GPU would be waiting on).

Models (random weights, built offline by the test kit): ``tiny``, the tests' ColQwen2; ``mid``,
a ColQwen2 at Qwen2-VL-2B's real widths with 2 text and 2 vision layers, pages capped at 256
visual tokens: random weights cost the same compute as trained ones. For each: pages/s, the
time in each stage, and the pipeline's overhead ``(wall - encoder) / encoder``.

``--full-size`` (for a GPU) instead instantiates ColQwen2 and ColPali at their real sizes with
random weights and reports the encoder's pages/s and MFU at ``--batch-sizes``, then the
pipeline at the best of them (``benchmarks.full_size``).

``--memory 50,500`` also indexes a PDF of each length with the first model, each in a fresh
process, and reports its resident memory once the model is loaded and its peak while indexing
(Linux: the peak is reset after loading): rendering, encoding and writing are streamed (pages
staged on disk, the index written a chunk at a time), so it should not grow with length.

``run`` (and ``full_size``) measure into a ``Result`` (a ``FullSize``); ``report`` (and
``full_size_report``) write it as Markdown.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from PIL import Image
from pypdf import PdfReader, PdfWriter

from benchmarks import cpu_dtype, offline
from benchmarks.report import header, machine, parser, publish, table
from rag.config import Settings, page_workers
from rag.index.local import LocalIndex
from rag.index.records import Document
from rag.ingest.pdf import inspect_pdf, render_pages
from rag.models.batching import CPU_BATCH
from rag.models.encoding import prepares_inline
from rag.models.families import named
from rag.pipeline import Models, Pipeline

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
MODELS = ("tiny", "mid")
REPEATS = 3
RESULTS = "results-indexing.md"
FULL_SIZE_RESULTS = "results-indexing-full-size.md"


@dataclass
class Run:
    """One way of indexing the PDF: its wall time and the seconds spent in each stage on the
    encoder's thread (``render``, ``preprocess``, ``encode``, ``write``; a stage run ahead on the
    page workers is absent)."""

    model: str
    mode: str
    pages: int
    wall_s: float
    stages: dict[str, float] = field(default_factory=dict)
    workers: int = 1  # page workers
    inline: bool = False  # the pipeline prepared pages on the encoder's thread, between batches
    skipped: bool = False  # the encoder returned at once

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.wall_s

    @property
    def overhead(self) -> float:
        """Time beyond the encoder's, relative to the encoder's."""
        return (self.wall_s - self.stages["encode"]) / self.stages["encode"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("indexing", __doc__, RESULTS)
    arguments.add_argument("--pages", type=int, default=24)
    arguments.add_argument("--models", default=",".join(MODELS), help="comma-separated: tiny,mid")
    arguments.add_argument("--batch-size", type=int, default=4)
    arguments.add_argument("--page-workers", type=int, default=0, help="0: auto (half the cores)")
    arguments.add_argument("--dpi", type=int, default=144)
    arguments.add_argument(
        "--models-dir", type=Path, default=Path(tempfile.gettempdir()) / "rag-bench"
    )
    arguments.add_argument("--memory", default="", help="comma-separated PDF lengths, e.g. 50,500")
    arguments.add_argument("--full-size", action="store_true", help="real-size models, for a GPU")
    arguments.add_argument("--batch-sizes", default="1,4,8,16,32", help="with --full-size")
    arguments.add_argument("--layers", type=int, help=argparse.SUPPRESS)  # full widths, few layers
    arguments.add_argument(
        "--repeats", type=int, default=REPEATS, help="timed passes per batch size (--full-size)"
    )
    arguments.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    return arguments.parse_args(argv)


@dataclass
class Result:
    args: argparse.Namespace
    machine: str
    dtype: str  # the models' compute dtype (RAG_DTYPE=auto)
    runs: list[Run]  # per model: naive, pipeline, pipeline with the encoder skipped
    memory: list[dict] = field(default_factory=list)  # per PDF length (``memory_child``)


@dataclass
class FullSize:
    args: argparse.Namespace
    machine: str
    device: str
    dtype: str
    measures: list  # benchmarks.full_size.Measure, per model and batch size
    runs: list[Run]  # per model, at its fastest batch size
    autos: list[tuple[str, int]]  # (model, auto batch size)
    attention: list[tuple[str, int, str, float, float]]  # (model, batch, kernel, pages/s, cosine)


def main(argv: list[str] | None = None) -> Result | FullSize | None:
    args = parse_args(argv)
    offline()
    if args.memory_child:
        print(json.dumps(memory_child(args)))
        return None
    if args.full_size:
        measured = full_size(args)
        publish(full_size_report(measured), args.out, FULL_SIZE_RESULTS)
        return measured
    result = run(args)
    publish(report(result), args.out, RESULTS)
    return result


def run(args: argparse.Namespace) -> Result:
    """Each model's three runs, then (``--memory``) a fresh process per PDF length."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="indexing-bench-") as scratch:
        pdf = synthetic_pdf(Path(scratch) / "synthetic.pdf", args.pages)
        for name in args.models.split(","):
            settings = Settings(
                retriever=str(build_model(name, args.models_dir)),
                data_dir=Path(scratch) / name,
                dpi=args.dpi,
                batch_size=args.batch_size,
                page_workers=args.page_workers,
                device="cpu",
            )
            models = Models(settings)
            blank = Image.new("RGB", (612, 792), "white")
            models.retriever.encode(models.retriever.preprocess([blank]))  # warm-up
            runs.append(naive(name, pdf, settings, models))
            runs.append(pipelined(name, pdf, settings, models))
            runs.append(pipelined(name, pdf, settings, models, skip_encoder=True))
    memory = [memory_run(args, int(n)) for n in args.memory.split(",")] if args.memory else []
    return Result(args, machine(), cpu_dtype(), runs, memory)


def build_model(name: str, models_dir: Path) -> Path:
    if name == "tiny":
        from devtools.tiny_models import build

        return build("colqwen2", models_dir)
    if name == "mid":
        from devtools.tiny_models.qwen import build_colqwen2_mid

        return build_colqwen2_mid(models_dir)
    raise SystemExit(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")


def synthetic_pdf(path: Path, n_pages: int) -> Path:
    """``n_pages`` pages cycled from the sample PDFs (text, tables, slides, forms)."""
    pages = [page for pdf in sorted(SAMPLES.glob("*.pdf")) for page in PdfReader(pdf).pages]
    writer = PdfWriter()
    for page in itertools.islice(itertools.cycle(pages), n_pages):
        writer.add_page(page)
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def naive(model: str, pdf: Path, settings: Settings, models: Models) -> Run:
    """One page at a time, each stage waiting for the last."""
    settings = replace(
        settings, render_chunk_pages=1, page_workers=1, data_dir=settings.data_dir / "naive"
    )
    retriever, stages = models.retriever, defaultdict(float)
    index = LocalIndex(settings.data_dir / "index", settings.retriever)
    started = time.perf_counter()
    info = inspect_pdf(pdf, settings)
    embeddings = []
    with index.staging() as staged:
        pages = render_pages(pdf, staged, settings, info, page_path=index.page_path)
        for _ in range(info.pages):
            mark = time.perf_counter()
            page = next(pages)
            stages["render"] += time.perf_counter() - mark
            mark = time.perf_counter()
            inputs = retriever.preprocess([page.open()])
            stages["preprocess"] += time.perf_counter() - mark
            mark = time.perf_counter()
            embeddings += retriever.encode(inputs)
            stages["encode"] += time.perf_counter() - mark
        mark = time.perf_counter()
        index.add(Document("naive", pdf.name, info.pages, "2026-01-01"), staged, embeddings)
        stages["write"] += time.perf_counter() - mark
    wall = time.perf_counter() - started
    return Run(model, "naive, 1 page per step", info.pages, wall, stages)


def pipelined(
    model: str, pdf: Path, settings: Settings, models: Models, skip_encoder: bool = False
) -> Run:
    """``Pipeline.add_file``, with the encoder's and the index's time measured inside it; with
    ``skip_encoder``, the encoder returns one zero vector per page at once."""
    folder = "fed" if skip_encoder else "pipeline"
    settings = replace(settings, data_dir=settings.data_dir / folder)
    pipeline = Pipeline(settings, models=models)
    stages: dict[str, float] = defaultdict(float)
    retriever, index = models.retriever, pipeline.index
    encode, add = retriever.encode, index.add
    if skip_encoder:
        encode = partial(_no_encoder, retriever.dim)

    def timed(stage, function):
        def call(*args, **kwargs):
            mark = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                stages[stage] += time.perf_counter() - mark

        return call

    retriever.encode, index.add = timed("encode", encode), timed("write", add)
    try:
        started = time.perf_counter()
        result = pipeline.add_file(pdf)
        wall = time.perf_counter() - started
    finally:
        del retriever.encode
    if result.status != "indexed":
        raise SystemExit(f"the pipeline did not index the PDF: {result.message}")
    workers = page_workers(settings)
    workers_text = f"{workers} page worker{'s' if workers > 1 else ''}"
    inline = prepares_inline(workers, retriever.device.type)
    if inline:
        workers_text += ", inline"
    mode = f"pipeline, batches of {retriever.batch_size}, {workers_text}"
    if skip_encoder:
        mode = f"pipeline, encoder skipped, {workers_text}"
    return Run(model, mode, result.pages, wall, stages, workers, inline, skip_encoder)


def _no_encoder(dim: int, inputs) -> list:
    import torch

    return [torch.zeros(1, dim) for _ in range(len(inputs["input_ids"]))]


def full_size(args: argparse.Namespace) -> FullSize:
    """Full-size models: encoder pages/s and MFU per batch size, then the pipeline."""
    import torch

    from benchmarks import full_size as fs
    from rag.models.batching import auto_batch_size, probe_page
    from rag.models.retriever import Retriever

    device = "cuda" if torch.cuda.is_available() else "cpu"
    names = args.models.split(",") if args.models != ",".join(MODELS) else list(fs.ARCHITECTURES)
    measures, runs, autos, attention = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="indexing-full-") as scratch:
        pdf = synthetic_pdf(Path(scratch) / "synthetic.pdf", args.pages)
        settings = Settings(
            retriever="full-size", dpi=args.dpi, device=device, page_workers=args.page_workers
        )
        info = inspect_pdf(pdf, settings)
        with LocalIndex(Path(scratch) / "pages", "full-size").staging() as staged:
            images = [page.open() for page in render_pages(pdf, staged, settings, info)]
        for name in names:
            model, processor = fs.build(name, device, args.layers)
            family = named(name)
            retriever = Retriever(model, processor, family, f"{name} (full size, random)")
            peak = fs.peak_flops(device)
            auto = auto_batch_size(retriever, probe_page(settings.dpi, settings.max_page_pixels))
            autos.append((name, auto))
            batches = sorted({*(int(b) for b in args.batch_sizes.split(",")), auto})
            swept = fs.sweep(retriever, images, batches, args.repeats, peak)
            measures += swept
            best = fs.fastest(swept)
            kernels = fs.attention_kernels(device)
            for kernel, rate, cosine in fs.compare_attention(
                retriever, images, best.batch, kernels, args.repeats
            ):
                attention.append((name, best.batch, kernel, rate, cosine))
            retriever.batch_size = best.batch
            run_settings = replace(
                settings, retriever=name, batch_size=best.batch, data_dir=Path(scratch) / name
            )
            models = Models(run_settings)
            models._retriever = retriever  # built in memory, not loaded from a folder
            runs.append(naive(name, pdf, run_settings, models))
            runs.append(pipelined(name, pdf, run_settings, models))
            runs.append(pipelined(name, pdf, run_settings, models, skip_encoder=True))
            del model, retriever, models
            if device == "cuda":
                torch.cuda.empty_cache()
    dtype = str(fs.compute_dtype(device)).removeprefix("torch.")
    return FullSize(args, machine(), device, dtype, measures, runs, autos, attention)


def full_size_report(result: FullSize) -> str:
    from benchmarks import full_size as fs

    args, device = result.args, result.device
    flags = f" --models {args.models}" if args.models != ",".join(MODELS) else ""
    flags += f" --layers {args.layers}" if args.layers else ""
    flags += f" --repeats {args.repeats}" if args.repeats != REPEATS else ""
    lines = header(
        f"Indexing benchmark, full-size models: {args.pages} pages",
        f"command: `python -m benchmarks.indexing --full-size --pages {args.pages} "
        f"--batch-sizes {args.batch_sizes}{flags}{_workers_flag(args)}` (DPI {args.dpi})",
        f"machine: {result.machine}; device {device}, {result.dtype}",
        f"encoder alone: `Retriever.encode` over every page, median of {args.repeats} "
        f"pass{'es' if args.repeats > 1 else ''} after a warm-up; "
        "MFU: model FLOPs (2 x parameters x tokens, see benchmarks/full_size.py) per second "
        + (
            "over the GPU's dense bf16 peak"
            if device.startswith("cuda")
            else "over this CPU's square-matmul rate in that dtype, measured in this run"
        ),
        "peak for MFU: " + _peaks(result.measures),
    )
    attention = [
        (name, batch, kernel, "out of memory", "-")
        if math.isnan(rate)
        else (name, batch, kernel, fs.rate(rate), f"{cosine:.4f}")
        for name, batch, kernel, rate, cosine in result.attention
    ]
    naive_rate = {run.model: run.pages_per_s for run in result.runs if run.mode.startswith("naive")}
    runs = [
        (
            run.model,
            run.mode,
            fs.rate(run.pages_per_s),
            f"{run.pages_per_s / naive_rate[run.model]:.2f}",
            "skipped" if run.skipped else f"{run.stages['encode']:.1f}",
            f"{run.wall_s:.1f}",
            "-" if run.skipped else f"{run.overhead:.0%}",
        )
        for run in result.runs
    ]
    lines += [
        "",
        *fs.report_rows(result.measures),
        "",
        "Auto batch size (`RAG_BATCH_SIZE=0`: on CUDA, probed with one- and two-page batches of "
        "the largest page the renderer gives, to fit 80% of the free memory; "
        f"{CPU_BATCH} elsewhere): " + ", ".join(f"{name} {size}" for name, size in result.autos),
        "",
        "Attention kernels at each model's fastest batch size (agreement: mean cosine of the "
        "page vectors to the first kernel's, on one batch):",
        "",
        *table(attention, ("model", "batch", "attention", "pages/s", "agreement"), "lrlrr"),
        "",
        "The naive one-page-at-a-time loop, the pipeline (`Pipeline.add_file`) at each model's "
        "fastest batch size, and the pipeline with the encoder skipped (what rendering and "
        "preprocessing alone can feed it):",
        "",
        *table(
            runs,
            ("model", "mode", "pages/s", "x naive", "encode s", "wall s", "overhead"),
            "llrrrrr",
        ),
    ]
    return "\n".join(lines) + "\n"


def _peaks(measures: list) -> str:
    """Each model's peak FLOP/s for MFU, e.g. ``colqwen2 0.34 TFLOP/s``."""
    peaks = {m.model: m.peak for m in measures}
    return ", ".join(
        f"{model} " + ("unknown" if peak is None else f"{peak / 1e12:.3g} TFLOP/s")
        for model, peak in peaks.items()
    )


def memory_run(args: argparse.Namespace, pages: int) -> dict:
    """Index a ``pages``-page PDF in a fresh process (peak memory is per process)."""
    model = args.models.split(",")[0]
    command = [sys.executable, "-m", "benchmarks.indexing", f"--memory-child={pages}"]
    command += [f"--models={model}", f"--dpi={args.dpi}", f"--batch-size={args.batch_size}"]
    command += [f"--models-dir={args.models_dir}"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_child(args: argparse.Namespace) -> dict:
    model = args.models.split(",")[0]
    with tempfile.TemporaryDirectory(prefix="indexing-memory-") as scratch:
        pdf = synthetic_pdf(Path(scratch) / "synthetic.pdf", args.memory_child)
        settings = Settings(
            retriever=str(build_model(model, args.models_dir)),
            data_dir=Path(scratch) / "data",
            dpi=args.dpi,
            batch_size=args.batch_size,
            device="cpu",
        )
        models = Models(settings)
        blank = Image.new("RGB", (612, 792), "white")
        models.retriever.encode(models.retriever.preprocess([blank]))  # loaded and warm
        loaded = _status_mb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from here
        started = time.perf_counter()
        result = Pipeline(settings, models=models).add_file(pdf)
        seconds = time.perf_counter() - started
    if result.status != "indexed":
        raise SystemExit(f"the pipeline did not index the PDF: {result.message}")
    return {
        "model": model,
        "pages": result.pages,
        "seconds": seconds,
        "loaded_mb": loaded,
        "peak_mb": _status_mb("VmHWM"),
    }


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_report(runs: list[dict]) -> list[str]:
    cells = [
        (
            run["pages"],
            f"{run['seconds']:.0f}",
            f"{run['loaded_mb']:.0f}",
            f"{run['peak_mb']:.0f}",
            f"{run['peak_mb'] / runs[0]['peak_mb']:.2f}",
        )
        for run in runs
    ]
    columns = (
        "pages", "seconds", "RSS with the model loaded, MB", "peak RSS while indexing, MB",
        "x shortest",
    )  # fmt: skip
    return [
        "",
        f"## Peak memory by PDF length ({runs[0]['model']} model, one fresh process each)",
        "",
        *table(cells, columns, "rrrrr"),
    ]


def report(result: Result) -> str:
    args = result.args
    lines = header(
        f"Indexing benchmark: {args.pages} pages",
        f"command: `python -m benchmarks.indexing --pages {args.pages} --models {args.models} "
        f"--batch-size {args.batch_size}{_workers_flag(args)}"
        f"{' --memory ' + args.memory if args.memory else ''}` (DPI {args.dpi})",
        f"machine: {result.machine}; models in {result.dtype} (RAG_DTYPE=auto)",
        "stages: seconds spent in each, on the encoder's thread for the pipeline (render and "
        "preprocess run ahead on the page workers there, overlapped; or, marked inline, on the "
        "encoder's thread between its batches, within the wall time); overhead: "
        "(wall - encode) / encode; x naive: pages/s against the naive loop on the same model; "
        "encoder skipped: what rendering and preprocessing alone can feed an encoder",
    )
    naive_rate = {run.model: run.pages_per_s for run in result.runs if run.mode.startswith("naive")}
    cells = []
    for run in result.runs:
        cells.append(
            (
                run.model,
                run.mode,
                f"{run.pages_per_s:.2f}",
                f"{run.pages_per_s / naive_rate[run.model]:.2f}",
                *(
                    "inline" if run.inline else _seconds(run.stages.get(stage))
                    for stage in ("render", "preprocess")
                ),
                "skipped" if run.skipped else _seconds(run.stages["encode"]),
                _seconds(run.stages.get("write")),
                f"{run.wall_s:.1f}",
                "-" if run.skipped else f"{run.overhead:.0%}",
            )
        )
    columns = (
        "model", "mode", "pages/s", "x naive", "render s", "preprocess s", "encode s", "write s",
        "wall s", "overhead",
    )  # fmt: skip
    lines += ["", *table(cells, columns, "llrrrrrrrr")]
    if result.memory:
        lines += memory_report(result.memory)
    return "\n".join(lines) + "\n"


def _workers_flag(args: argparse.Namespace) -> str:
    return f" --page-workers {args.page_workers}" if args.page_workers else ""


def _seconds(value: float | None) -> str:
    return "overlapped" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()
