"""ColQwen2.5: Qwen2.5-VL-3B with a 128-d projection; the same 28-px cell geometry and
resolution budget as ColQwen2 (vidore/colqwen2.5-v0.2)."""

from __future__ import annotations

from rag.models.families.colqwen2 import ColQwen2


class ColQwen2_5(ColQwen2):
    name = "colqwen2_5"
    label = "ColQwen2.5"
    architectures = ("ColQwen2_5",)
    model_types = ("qwen2_5_vl",)
    examples = ("vidore/colqwen2.5-v0.2",)
    model_class = "ColQwen2_5"
    processor_class = "ColQwen2_5_Processor"


RETRIEVER = ColQwen2_5()
