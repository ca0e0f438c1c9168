"""ColQwen3: Qwen3-VL with a 320-d projection; pages at their own aspect ratio in 32-px cells
(16-px patches merged 2x2), at most ``max_num_visual_tokens`` cells (ColQwen3 checkpoints of
colpali-engine 0.3.18; the cell grid comes from the processor, never from Qwen2's 28 px)."""

from __future__ import annotations

from rag.families.colqwen2 import ColQwen2


class ColQwen3(ColQwen2):
    name = "colqwen3"
    label = "ColQwen3"
    architectures = ("ColQwen3",)
    model_types = ("qwen3_vl",)
    examples = ("TomoroAI/tomoro-colqwen3-embed-4b",)
    model_class = "ColQwen3"
    processor_class = "ColQwen3Processor"


RETRIEVER = ColQwen3()
