"""Encoder throughput and MFU of full-size retrievers (random weights), for a GPU.

    python -m benchmarks.indexing --full-size [--models colqwen2,colpali] [--batch-sizes 1,4,16]
    python -m benchmarks.full_size [--families colqwen3_5,colgemma3] [--layers N] [--out FILE]

The second form encodes one A4 page with each family at its published size, each in a fresh
process, on the machine at hand, and reports vectors per page, seconds per page, FLOPs per page,
parameters and the process's peak memory.

Each architecture is instantiated at its real size (Qwen2-VL-2B / PaliGemma-3B-448 widths and
layer counts, from ``devtools.tiny_models``) directly on the device, in the dtype ``RAG_DTYPE=auto``
gives it (bf16 on CUDA and on CPUs with bf16 instructions), with random weights: they cost the
same compute as trained ones. Pages come from the synthetic PDF, rendered and preprocessed once;
each batch size then times ``Retriever.encode`` alone over the pages, then ``Pipeline.add_file``
runs at the best batch size.

Model FLOPs per page count the matmuls: 2 x (vision parameters x vision tokens + other
parameters x sequence tokens), the vocabulary table excluded (a lookup) and attention's
quadratic term left out (a few percent at these lengths, but about 2 TFLOP a page for
ColGemma3's SigLIP tower, which attends over 4,096 patches). MFU = FLOPs/s over the device's
peak: for GPUs in ``PEAK_BF16`` their dense bf16 tensor-core peak; on a CPU the rate of large
square matmuls in the compute dtype, measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import statistics
import time
from dataclasses import dataclass

import torch

from benchmarks.report import header, table

ARCHITECTURES = ("colqwen2", "colpali")  # the indexing benchmark's --full-size models
# One page each: the test kit's module of each family's ``<family>_at_scale(layers)`` builder.
AT_SCALE = {
    "colqwen3": "qwen3",
    "colqwen3_5": "qwen3",
    "colgemma3": "gemma3",
    "colmodernvbert": "modernvbert",
    "colqwen2_5_omni": "omni",
    "colidefics3": "idefics",
}
FAMILIES = tuple(AT_SCALE)
RESULTS = "results-families.md"
# Dense bf16 tensor-core peaks (FLOP/s) by device-name fragment, most specific first.
PEAK_BF16 = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM / HBM3
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
)


@dataclass
class Measure:
    model: str
    batch: int
    pages_per_s: float
    flops_per_page: float
    peak: float | None  # the device's peak FLOP/s, if known

    @property
    def mfu(self) -> float | None:
        return None if self.peak is None else self.pages_per_s * self.flops_per_page / self.peak


def build(name: str, device: str, layers: int | None = None):
    """(model, processor) of ``name`` at full size (``layers`` overrides every layer count, for a
    quick check), created on ``device`` in its compute dtype."""
    from devtools.tiny_models.common import seed

    dtype = compute_dtype(device)
    seed(0)
    with _default(device, dtype):
        if name == "colqwen2":
            from devtools.tiny_models.qwen import (
                FULL_TEXT_LAYERS,
                FULL_VISION_DEPTH,
                colqwen2_at_scale,
            )

            return colqwen2_at_scale(layers or FULL_TEXT_LAYERS, layers or FULL_VISION_DEPTH)
        if name == "colpali":
            from devtools.tiny_models.gemma import colpali_at_scale

            return colpali_at_scale(layers, layers)
        if name in AT_SCALE:
            module = importlib.import_module(f"devtools.tiny_models.{AT_SCALE[name]}")
            return getattr(module, f"{name}_at_scale")(layers)
    known = ", ".join((*ARCHITECTURES, *FAMILIES))
    raise SystemExit(f"unknown architecture {name!r}: expected one of {known}")


def compute_dtype(device: str) -> torch.dtype:
    """The dtype the app computes the models in on ``device`` (``RAG_DTYPE=auto``)."""
    from rag.models.checkpoints import resolve_dtype

    return resolve_dtype("auto", "cuda" if device.startswith("cuda") else device)


@contextlib.contextmanager
def _default(device: str, dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def flops_per_page(model, inputs) -> float:
    """2 x (vision parameters x vision tokens + other parameters x tokens) per page, averaged
    over the batch; the vocabulary table is a lookup, not a matmul, and an audio tower (Omni)
    does not run on pages."""
    vision, other = 0, 0
    for name, parameter in model.named_parameters():
        if "embed_tokens" in name or "audio_tower" in name:  # a lookup; idle for pages
            continue
        if "visual" in name or "vision_tower" in name or "vision_model" in name:
            vision += parameter.numel()
        else:
            other += parameter.numel()
    sequence = inputs["attention_mask"].sum().item()
    vision_tokens = sum(image_patches(model, inputs))
    pages = inputs["attention_mask"].shape[0]
    return 2 * (vision * vision_tokens + other * sequence) / pages


def image_patches(model, inputs) -> list[int]:
    """The patches the vision tower sees, image by image: Qwen's 14-px patches of each page
    (``image_grid_thw``), or a fixed square of patches per image, a page (ColPali) or each of
    its tiles (Idefics3)."""
    if "image_grid_thw" in inputs:
        return [int(n) for n in inputs["image_grid_thw"].prod(dim=-1).tolist()]
    config = model.config.vision_config
    pixels = inputs["pixel_values"]
    images = pixels.shape[0] * (pixels.shape[1] if pixels.dim() == 5 else 1)
    return [(config.image_size // config.patch_size) ** 2] * images


def peak_flops(device: str) -> float | None:
    """The device's peak FLOP/s for MFU: a known GPU's dense bf16 peak (None for others); on a
    CPU, its measured square-matmul rate in the compute dtype."""
    if device == "cpu":
        from benchmarks import cpu_matmul_peak

        return cpu_matmul_peak(compute_dtype(device))
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for fragment, peak in PEAK_BF16 if fragment in name), None)


def measure(retriever, images: list, batch: int, repeats: int = 3) -> tuple[float, float]:
    """(pages/s of ``encode`` alone, model FLOPs per page) at ``batch`` pages per pass: the
    median of ``repeats`` passes over every page, after a warm-up pass."""
    batches = [retriever.preprocess(images[i : i + batch]) for i in range(0, len(images), batch)]
    device = retriever.device

    def run() -> float:
        _sync(device)
        started = time.perf_counter()
        for inputs in batches:
            retriever.encode(inputs)
        _sync(device)
        return time.perf_counter() - started

    run()
    seconds = statistics.median(run() for _ in range(repeats))
    flops = statistics.mean(flops_per_page(retriever.model, inputs) for inputs in batches)
    return len(images) / seconds, flops


def sweep(retriever, images: list, batches: list[int], repeats: int, peak: float | None):
    """A ``Measure`` per batch size; a batch that does not fit the GPU's memory is recorded
    with NaN pages/s (and reported as such) instead of ending the run."""
    measures = []
    for batch in batches:
        try:
            rate, flops = measure(retriever, images, batch, repeats)
        except torch.cuda.OutOfMemoryError:
            _release(retriever.device)
            rate, flops = math.nan, math.nan
        measures.append(Measure(retriever.family.name, batch, rate, flops, peak))
    return measures


def fastest(measures: list[Measure]) -> Measure:
    fitting = [m for m in measures if not math.isnan(m.pages_per_s)]
    if not fitting:
        raise SystemExit(f"{measures[0].model}: no batch size fits this device's memory")
    return max(fitting, key=lambda m: m.pages_per_s)


def _release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def attention_kernels(device: str) -> list[str]:
    """The attention implementations to compare: sdpa and eager, and flash-attention 2 on a
    GPU where the flash-attn package is installed."""
    kernels = ["sdpa", "eager"]
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        kernels.append("flash_attention_2")
    return kernels


def compare_attention(
    retriever, images: list, batch: int, kernels: list[str], repeats: int
) -> list[tuple[str, float, float]]:
    """(kernel, encoder pages/s, mean cosine of its page vectors to the first kernel's) for
    each of ``kernels`` at ``batch`` pages per pass; the model's own kernel is restored after."""
    model = retriever.model
    own = model.config._attn_implementation
    first = retriever.preprocess(images[:batch])
    rows, reference = [], None
    try:
        for kernel in kernels:
            model.set_attn_implementation(kernel)
            try:
                rate, _ = measure(retriever, images, batch, repeats)
                vectors = torch.cat([page.float() for page in retriever.encode(first)])
            except torch.cuda.OutOfMemoryError:  # eager attention holds every score matrix
                _release(retriever.device)
                rows.append((kernel, math.nan, math.nan))
                continue
            reference = vectors if reference is None else reference
            agreement = torch.nn.functional.cosine_similarity(vectors, reference, dim=-1)
            rows.append((kernel, rate, agreement.mean().item()))
    finally:
        model.set_attn_implementation(own)
    return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(pages_per_s: float) -> str:
    """Pages/s to two decimals, or three significant digits below one (a CPU's full-size rate)."""
    return f"{pages_per_s:.2f}" if pages_per_s >= 1 else f"{pages_per_s:.3g}"


def report_rows(measures: list[Measure]) -> list[str]:
    """The encoder's table: pages/s, FLOPs and MFU per model and batch size."""
    cells = []
    for m in measures:
        if math.isnan(m.pages_per_s):
            cells.append((m.model, m.batch, "out of memory", "-", "-", "-"))
            continue
        cells.append(
            (
                m.model,
                m.batch,
                rate(m.pages_per_s),
                f"{m.flops_per_page / 1e9:,.1f}",
                f"{m.pages_per_s * m.flops_per_page / 1e12:.2f}",
                "n/a" if m.mfu is None else f"{m.mfu:.0%}",
            )
        )
    columns = ("model", "batch", "pages/s", "GFLOP/page", "TFLOP/s", "MFU")
    return table(cells, columns, "lrrrrr")


# -- one page per family ---------------------------------------------------------------------

A4_PIXELS = (1190, 1684)  # an A4 page at the app's 144 DPI


def encode_one_page(name: str, layers: int | None = None) -> dict:
    """Build ``name`` at full size on the CPU in its compute dtype, encode one A4 page (after a
    warm-up pass) and measure it: runs in the process that reports its peak memory."""
    import resource

    from PIL import Image, ImageDraw

    from rag.models.families import named
    from rag.models.retriever import Retriever

    model, processor = build(name, "cpu", layers)
    retriever = Retriever(model, processor, named(name), f"{name} (full size, random)")
    page = Image.new("RGB", A4_PIXELS, "white")
    ImageDraw.Draw(page).text((80, 80), "Annual report 2024: revenue 12.4 M EUR", fill="black")
    inputs = retriever.preprocess([page])
    (vectors,) = retriever.encode(inputs)  # warm-up
    started = time.perf_counter()
    retriever.encode(inputs)
    seconds = time.perf_counter() - started
    return {
        "family": name,
        "vectors": int(vectors.shape[0]),
        "dim": int(vectors.shape[1]),
        "seconds": seconds,
        "flops": flops_per_page(model, inputs),
        "parameters": sum(p.numel() for p in model.parameters()),
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "dtype": str(compute_dtype("cpu")).removeprefix("torch."),
    }


@dataclass
class Families:
    """One A4 page per family (``encode_one_page``'s dicts), each from its own process."""

    command: str
    machine: str
    rows: list[dict]


def families(args) -> Families:
    """Each of ``--families`` measured in a fresh process (its peak memory is its own)."""
    import json
    import subprocess
    import sys

    from benchmarks.report import machine

    rows = []
    for name in args.families.split(","):
        command = [sys.executable, "-m", "benchmarks.full_size", "--one", name]
        command += [f"--layers={args.layers}"] if args.layers else []
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    command = f"python -m benchmarks.full_size --families {args.families}"
    command += f" --layers {args.layers}" if args.layers else ""
    return Families(command, machine(), rows)


def families_report(result: Families) -> str:
    lines = header(
        "Full-size retrievers, one A4 page each (random weights, published sizes)",
        f"command: `{result.command}`",
        f"machine: {result.machine}",
        "each family in a fresh process, at its checkpoint's size, in the app's compute dtype; "
        "seconds: one encode of the page after a warm-up; FLOPs: 2 x parameters x tokens "
        "(vision parameters x patches, the rest x sequence tokens; the vocabulary excluded); "
        "peak memory: the process's resident peak (model and activations)",
    )
    cells = [
        (
            row["family"],
            f"{row['parameters'] / 1e9:.2f} B",
            row["dtype"],
            row["vectors"],
            row["dim"],
            f"{row['seconds']:.1f}",
            f"{row['flops'] / 1e12:.2f}",
            f"{row['flops'] / row['seconds'] / 1e12:.2f}",
            f"{row['peak_gb']:.1f} GB",
        )
        for row in result.rows
    ]
    columns = (
        "family", "parameters", "dtype", "vectors per page", "dim", "s per page",
        "TFLOP per page", "TFLOP/s", "peak memory",
    )  # fmt: skip
    return "\n".join([*lines, "", *table(cells, columns, "lrlrrrrrr")]) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from benchmarks.report import parser

    arguments = parser("full_size", __doc__, RESULTS)
    arguments.add_argument("--families", default=",".join(FAMILIES))
    arguments.add_argument("--layers", type=int, help="every layer count (a quick check)")
    arguments.add_argument("--one", help=argparse.SUPPRESS)  # the measuring process
    return arguments.parse_args(argv)


def main(argv: list[str] | None = None) -> Families | None:
    import json

    from benchmarks import offline
    from benchmarks.report import publish

    args = parse_args(argv)
    offline()
    if args.one:
        print(json.dumps(encode_one_page(args.one, args.layers)))
        return None
    result = families(args)
    publish(families_report(result), args.out, RESULTS)
    return result


if __name__ == "__main__":
    main()
