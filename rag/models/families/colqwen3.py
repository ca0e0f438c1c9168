"""ColQwen3: Qwen3-VL with a 320-d projection; pages at their own aspect ratio in 32-px cells
(16-px patches merged 2x2), at most ``max_num_visual_tokens`` cells (checkpoints saved with
colpali-engine's ColQwen3 class; ones that need ``trust_remote_code`` are not loaded). The cell
grid comes from the processor, never from Qwen2's 28 px."""

from __future__ import annotations

from rag.models.families.colqwen2 import ColQwen2


class ColQwen3(ColQwen2):
    name = "colqwen3"
    label = "ColQwen3"
    architectures = ("ColQwen3",)
    model_types = ("qwen3_vl",)
    examples = (
        "a checkpoint saved with colpali-engine's ColQwen3 (Qwen/Qwen3-VL-4B-Instruct base)",
    )
    model_class = "ColQwen3"
    processor_class = "ColQwen3Processor"


RETRIEVER = ColQwen3()
