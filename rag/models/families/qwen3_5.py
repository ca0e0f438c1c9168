"""Qwen3.5 answerers (its checkpoints take images): the Qwen chat template, page images in
32-px cells as Qwen3-VL's (Qwen/Qwen3.5-4B, Qwen/Qwen3.5-27B, MoE: Qwen/Qwen3.5-35B-A3B)."""

from __future__ import annotations

from rag.models.families.qwen3_vl import Qwen3VL


class Qwen3_5(Qwen3VL):
    name = "qwen3_5"
    label = "Qwen3.5"
    architectures = ("Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration")
    model_types = ("qwen3_5", "qwen3_5_moe")
    examples = ("Qwen/Qwen3.5-4B", "Qwen/Qwen3.5-35B-A3B")


ANSWERER = Qwen3_5()
