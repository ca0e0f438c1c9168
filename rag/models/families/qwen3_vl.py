"""Qwen3-VL answerers, dense and mixture-of-experts: the Qwen chat template; page images sized
by qwen-vl-utils within the pixel budget in Qwen3-VL's 32-px cells (16-px patches merged 2x2,
not Qwen2-VL's 28) (Qwen/Qwen3-VL-2B-Instruct, Qwen/Qwen3-VL-4B-Instruct,
Qwen/Qwen3-VL-30B-A3B-Instruct)."""

from __future__ import annotations

from rag.models.families.qwen_vl import QwenVL


class Qwen3VL(QwenVL):
    name = "qwen3_vl"
    label = "Qwen3-VL"
    architectures = ("Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration")
    model_types = ("qwen3_vl", "qwen3_vl_moe")
    examples = ("Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-30B-A3B-Instruct")
    cell = 32


ANSWERER = Qwen3VL()
