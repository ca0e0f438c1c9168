"""Idefics3 and SmolVLM answerers: the processor's own chat template, a label before each page
(HuggingFaceTB/SmolVLM-Instruct, HuggingFaceTB/SmolVLM-256M-Instruct, ...)."""

from __future__ import annotations

from rag.families.base import AnswererFamily, chat_template_inputs


class Idefics3(AnswererFamily):
    name = "idefics3"
    label = "Idefics3 / SmolVLM"
    architectures = ("Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration")
    model_types = ("idefics3", "smolvlm")
    examples = ("HuggingFaceTB/SmolVLM-Instruct", "HuggingFaceTB/SmolVLM-256M-Instruct")

    def build_inputs(self, processor, question, pages, min_pixels, max_pixels):
        return chat_template_inputs(processor, question, pages)


ANSWERER = Idefics3()
