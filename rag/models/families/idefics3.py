"""Idefics3, SmolVLM and SmolVLM2 answerers: the processor's own chat template, a label before
each page; pages sized within the pixel budget (RAG_ANSWER_MAX_PIXELS) to a longest edge of
whole 512-px tiles, then tiled by the processor (HuggingFaceTB/SmolVLM-256M-Instruct,
HuggingFaceTB/SmolVLM2-2.2B-Instruct, ...; SmolVLM2's processor needs the num2words package)."""

from __future__ import annotations

from dataclasses import replace

from rag.models.families.base import AnswererFamily, chat_template_inputs
from rag.models.families.tiling import fitted


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
        # Each page sized here within the budget, in whole tiles; the processor then only
        # rounds it to whole tiles and cuts them.
        image_processor = processor.image_processor
        sized = [
            replace(p, image=fitted(p.image, p.budget(max_pixels), image_processor)) for p in pages
        ]
        return chat_template_inputs(processor, question, sized, history, do_resize=False)


ANSWERER = Idefics3()
