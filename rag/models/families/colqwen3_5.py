"""ColQwen3.5: Qwen3.5 (Gated DeltaNet and attention layers, Qwen3-VL's vision tower) with a
projection whose width the checkpoint's config gives (``dim``); pages in 32-px cells, at most
``max_num_visual_tokens`` of them."""

from __future__ import annotations

from rag.models.families.colqwen2 import ColQwen2


class ColQwen3_5(ColQwen2):  # colpali-engine's class name
    name = "colqwen3_5"
    label = "ColQwen3.5"
    architectures = ("ColQwen3_5",)
    model_types = ("qwen3_5",)
    examples = ("athrael-soju/colqwen3.5-4.5B-v3",)
    model_class = "ColQwen3_5"
    processor_class = "ColQwen3_5Processor"


RETRIEVER = ColQwen3_5()
