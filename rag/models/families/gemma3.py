"""Gemma 3 answerers: the processor's own chat template, a label before each page; each page
squared to the SigLIP input size and pooled to ``image_seq_length`` tokens (256), so the pixel
budget does not apply (google/gemma-3-4b-it, google/gemma-3-12b-it)."""

from __future__ import annotations

from rag.models.families.base import AnswererFamily, chat_template_inputs


class Gemma3(AnswererFamily):
    name = "gemma3"
    label = "Gemma 3"
    architectures = ("Gemma3ForConditionalGeneration",)
    model_types = ("gemma3",)
    examples = ("google/gemma-3-4b-it", "google/gemma-3-12b-it")

    def build_inputs(self, processor, question, pages, min_pixels, max_pixels, *, history=()):
        return chat_template_inputs(processor, question, pages, history)


ANSWERER = Gemma3()
