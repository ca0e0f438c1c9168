"""Idefics3, SmolVLM and SmolVLM2 answerers: the processor's own chat template, a label before
each page; pages tiled by the processor (HuggingFaceTB/SmolVLM-256M-Instruct,
HuggingFaceTB/SmolVLM2-2.2B-Instruct, ...; SmolVLM2's processor needs the num2words package)."""

from __future__ import annotations

from rag.families.base import AnswererFamily, chat_template_inputs


class Idefics3(AnswererFamily):
    name = "idefics3"
    label = "Idefics3 / SmolVLM / SmolVLM2"
    architectures = ("Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration")
    model_types = ("idefics3", "smolvlm")
    examples = (
        "HuggingFaceTB/SmolVLM-256M-Instruct",
        "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
        "HuggingFaceTB/SmolVLM2-500M-Video-Instruct",
    )

    def build_inputs(self, processor, question, pages, min_pixels, max_pixels, *, history=()):
        return chat_template_inputs(processor, question, pages, history)


ANSWERER = Idefics3()
