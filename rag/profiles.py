"""Profiles: the models and page budgets that suit the machine (RAG_PROFILE=auto|cpu|gpu).

``gpu`` is the app's defaults: the strongest models of each kind that fit a 16 GB GPU.
``cpu`` is what a 2-core CPU (a free Hugging Face Space) can answer with in seconds: the small
retriever and answerer, pages held to a few 512-px tiles each. ``auto`` picks ``gpu`` where a
CUDA or Apple GPU is found (or RAG_DEVICE names one, or the app runs on a ZeroGPU Space),
``cpu`` elsewhere. A profile only
supplies defaults: every RAG_* variable, and every command-line option, still overrides it.
The figures behind the ``cpu`` choices are in docs/performance.md ("Time to answer"), from
``python -m benchmarks.latency``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

Profile = Literal["auto", "cpu", "gpu"]
PROFILES: dict[str, dict[str, object]] = {
    "gpu": {},  # the Settings defaults
    "cpu": {
        "retriever": "ModernVBERT/colmodernvbert",
        "generator": "HuggingFaceTB/SmolVLM-256M-Instruct",
        # 2 x 2 tiles and a global view: 320 vectors a page (the checkpoint's own: 4 x 4).
        "max_visual_tokens": 320,
        # The answer's best page at 1024 px (an A4 page: 2 x 2 tiles and a global view, 320
        # image tokens), the others at 512 px (one tile, 64 tokens): the first token in about
        # half the time of three pages at 1024 px.
        "answer_max_pixels": 1024 * 1024,
        "answer_rest_max_pixels": 512 * 512,
        # Linear layers in int8: decoding twice as fast, the first token and a page's encoding
        # a sixth sooner; vectors and logits stay within a cosine of 0.998 of bf16's.
        "quantize": "int8",
        # No reranker: the first token's target is 5 s after Ask (2.75 s measured), and 20 pages
        # cost 52 s through bge-reranker-v2-m3 at 512 tokens each (13 s at 128; 8.4 s and 2.0 s
        # even at this CPU's best matmul rate) and 544 s through MonoQwen2-VL at 512 x 512 px
        # (benchmarks/results-latency-rerankers.md). RAG_RERANKER still turns one on.
        "reranker": "off",
    },
}
# With answers on a model server (RAG_GENERATOR=openai:MODEL) the cpu profile keeps its retrieval
# and leaves the answer's page budgets at the defaults: those were cut for a small answerer on
# this CPU, and the server's hardware pays for the pages now.
REMOTE_KEEPS_DEFAULTS = ("generator", "answer_max_pixels", "answer_rest_max_pixels")
# The cpu profile's attention where the CPU has bf16 instructions (rag.models.attention: a page's
# encoding a quarter sooner); elsewhere bf16 matmuls are emulated, and PyTorch's kernel stays.
CPU_BF16_ATTENTION = {"attn_implementation": "cpu_bf16"}


def resolve(profile: str, device: str, environ: Mapping[str, str] | None = None) -> str:
    """The profile ``profile`` names (``auto``: by ``device``, found as RAG_DEVICE=auto finds
    it; a ZeroGPU Space, whose GPU is lent per request, counts as a GPU)."""
    if profile != "auto":
        return profile
    environ = os.environ if environ is None else environ
    if environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true"):
        return "gpu"
    if device == "auto":
        from rag.models.checkpoints import resolve_device

        device = resolve_device("auto")
    return "cpu" if device == "cpu" else "gpu"


def defaults(
    profile: str, device: str, environ: Mapping[str, str] | None = None, remote: bool = False
) -> tuple[str, dict[str, object]]:
    """(the profile chosen, the Settings values it sets); ``remote``: the answers are written
    on a model server (``REMOTE_KEEPS_DEFAULTS``)."""
    from rag.models.checkpoints import cpu_has_bf16

    chosen = resolve(profile, device, environ)
    preset = dict(PROFILES[chosen])
    if remote:
        preset = {k: v for k, v in preset.items() if k not in REMOTE_KEEPS_DEFAULTS}
    if chosen == "cpu" and cpu_has_bf16():
        preset |= CPU_BF16_ATTENTION
    return chosen, preset
