"""PaliGemma and PaliGemma 2 answerers ("mix" checkpoints): no chat template; one ``<image>``
per page then ``answer en QUESTION``, and several pages go as ``images=[[p1, p2]]``
(google/paligemma-3b-mix-448)."""

from __future__ import annotations

import re

from rag.models.families.base import AnswererFamily

# PaliGemma's detection and segmentation tokens survive skip_special_tokens.
_LOCATION_TOKENS = re.compile(r"<(?:loc\d{4}|seg\d{3})>")


class PaliGemma(AnswererFamily):
    name = "paligemma"
    label = "PaliGemma / PaliGemma 2"
    architectures = ("PaliGemmaForConditionalGeneration",)
    model_types = ("paligemma",)
    examples = ("google/paligemma-3b-mix-448", "google/paligemma2-3b-mix-448")

    def build_inputs(self, processor, question, pages, min_pixels, max_pixels, *, history=()):
        # Mix checkpoints follow task prefixes, not instructions, nor a conversation: a
        # follow-up reaches them already rewritten as a standalone question (rag.chat).
        prompt = "<image>" * len(pages) + f"answer en {question.strip()}"
        images = [[page.image.convert("RGB") for page in pages]]
        return processor(text=[prompt], images=images, return_tensors="pt")

    def text_inputs(self, processor, prompt):
        return None  # no chat template, and its processor wants an image

    def clean(self, text):
        return _LOCATION_TOKENS.sub("", text)


ANSWERER = PaliGemma()
