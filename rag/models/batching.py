"""How many pages go through the encoder at once.

``RAG_BATCH_SIZE=N`` fixes it. ``0`` (auto, the default) sizes it for the device: on CUDA, from
the memory free once the model is loaded and the memory a page takes there, measured once at
load with a one-page and a two-page probe batch (a page of the largest size the renderer
produces: a page's cost depends on its size, not its content); elsewhere ``CPU_BATCH``, one
page: a CPU forward pass is compute-bound, and a bigger batch only spills its activations out of
the caches (measured at published sizes on 2 cores: ColModernVBert 1.68 s a page alone, 1.94 s
in pairs, 2.73 s in fours; ColQwen2 11% slower in fours; ``python -m benchmarks.latency
--levers``).
"""

from __future__ import annotations

import logging
import math

import torch
from PIL import Image

logger = logging.getLogger(__name__)

CPU_BATCH = 1
MAX_BATCH = 64  # beyond this a batch gains nothing and delays the first progress report
HEADROOM = 0.8  # share of the free memory a batch may use: the rest is for fragmentation


def fit_batch(free_bytes: int, fixed_bytes: int, per_page_bytes: int) -> int:
    """The largest batch whose peak memory (``fixed + n * per_page``) fits ``HEADROOM`` of the
    free memory, between 1 and ``MAX_BATCH``.

    >>> fit_batch(free_bytes=10_000, fixed_bytes=1_000, per_page_bytes=700)
    10
    >>> fit_batch(free_bytes=10_000, fixed_bytes=9_000, per_page_bytes=700)  # never below 1
    1
    """
    if per_page_bytes <= 0:
        return MAX_BATCH
    pages = (free_bytes * HEADROOM - fixed_bytes) // per_page_bytes
    return int(min(MAX_BATCH, max(1, pages)))


def probe_page(dpi: int, max_pixels: int) -> Image.Image:
    """A blank US-letter page as the renderer would give it (scaled down past ``max_pixels``)."""
    width, height = 8.5 * dpi, 11 * dpi
    scale = min(1.0, math.sqrt(max_pixels / (width * height)))
    return Image.new("RGB", (max(1, round(width * scale)), max(1, round(height * scale))), "white")


def auto_batch_size(retriever, probe: Image.Image) -> int:
    """``CPU_BATCH`` off CUDA; on CUDA, measured: the peak memory of a one-page and a two-page
    forward pass gives the memory per page (their difference) and the fixed part."""
    device = retriever.device
    if device.type != "cuda":
        return CPU_BATCH
    peaks = []
    for n in (1, 2):
        inputs = retriever.preprocess([probe] * n)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        retriever.encode(inputs)
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - before)
    per_page = max(peaks[1] - peaks[0], 1)
    fixed = max(peaks[0] - per_page, 0)
    free, _total = torch.cuda.mem_get_info(device)
    size = fit_batch(free, fixed, per_page)
    logger.info(
        "batch size %d: %.0f MiB free, %.0f MiB per page, %.0f MiB fixed",
        size,
        free / 2**20,
        per_page / 2**20,
        fixed / 2**20,
    )
    return size
