"""Benchmarks, each run as ``python -m benchmarks.<name>``: each measures into plain data, and its
reporter turns the data into a Markdown report, printed and written to ``--out`` (by default
under ``benchmarks/out/``, never over the committed ``benchmarks/results*.md``:
``benchmarks.report``)."""

from __future__ import annotations

import math
import os
import time

MATMUL_PEAK_SIZE = 2048  # square products that time a CPU's peak matmul rate


def offline() -> None:
    """Never contact the hub (every benchmark builds its own models) and make the model
    libraries importable (``rag.models.torch_compat``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.models.torch_compat import ensure_torchvision

    ensure_torchvision()


def cpu_dtype() -> str:
    """The dtype ``RAG_DTYPE=auto`` computes the models in on this CPU, e.g. ``bfloat16``."""
    from rag.models.checkpoints import resolve_dtype

    return str(resolve_dtype("auto", "cpu")).removeprefix("torch.")


def cpu_matmul_peak(dtype, size: int = MATMUL_PEAK_SIZE, repeats: int = 5) -> float:
    """This CPU's matmul rate in ``dtype`` at its best, FLOP/s: square ``size`` products, the
    fastest of ``repeats`` after a warm-up (other work on a shared machine only slows one)."""
    import torch

    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best
