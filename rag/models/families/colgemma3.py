"""ColGemma3: Gemma 3 with a 128-d projection. A page is squared to the SigLIP input size (896
px in the published models) and its patches average-pooled into a square of
``image_seq_length`` soft tokens (16 x 16 = 256 there).

colpali-engine 0.3.18's ``get_n_patches`` for it divides the input size by the patch size (64
x 64 for 256 tokens) and its processor's ``image_token_id`` is the begin-of-image marker, so the
grid and the mask are taken from the soft tokens themselves: one square of
``sqrt(image_seq_length)`` per side, the page's tokens equal to the tokenizer's image token."""

from __future__ import annotations

import math

from rag.models.families.base import RetrieverFamily, unpadded


class ColGemma3(RetrieverFamily):
    name = "colgemma3"
    label = "ColGemma3"
    architectures = ("ColGemma3",)
    model_types = ("gemma3",)
    examples = ("google/gemma-3-4b-it (base of ColGemma3 fine-tunes)",)
    model_class = "ColGemma3"
    processor_class = "ColGemmaProcessor3"

    def patch_grid(self, model, processor, image):
        inputs = processor.process_images([image.convert("RGB")])
        mask = inputs["input_ids"][0] == processor.tokenizer.image_token_id
        side = math.isqrt(processor.image_seq_length)
        if side * side != int(mask.sum()):
            raise ValueError(f"{int(mask.sum())} image tokens are not a {side} x {side} square")
        return unpadded(side, side, mask, inputs)


RETRIEVER = ColGemma3()
