"""ColQwen2.5-Omni: the Qwen2.5-Omni thinker (Qwen2.5-VL-style vision tower, 28-px cells; an
audio encoder this app leaves idle: pages are images) with a 128-d projection
(vidore/colqwen-omni-v0.1).

colpali-engine 0.3.18's class predates transformers 5's thinker, which keeps its vision tower at
``model.visual`` and its width in ``text_config``; ``prepare`` points the class at them (nothing
else changes: the same weights, the same forward). Its processor has no ``get_n_patches``, so the
grid is read from the ``image_grid_thw`` the processor returns with the page."""

from __future__ import annotations

from rag.models.families.base import RetrieverFamily, unpadded


class ColQwen2_5Omni(RetrieverFamily):  # colpali-engine's class name
    name = "colqwen2_5_omni"
    label = "ColQwen2.5-Omni"
    architectures = ("ColQwen2_5Omni",)
    model_types = ("qwen2_5_omni_thinker",)
    examples = ("vidore/colqwen-omni-v0.1",)
    model_class = "ColQwen2_5Omni"
    processor_class = "ColQwen2_5OmniProcessor"

    def prepare(self):
        from colpali_engine.models import ColQwen2_5Omni as Model
        from transformers import Qwen2_5OmniThinkerConfig as Config

        if not hasattr(Model, "visual"):
            Model.visual = property(lambda model: model.model.visual)
        if not hasattr(Config, "hidden_size"):
            Config.hidden_size = property(lambda config: config.text_config.hidden_size)

    def patch_grid(self, model, processor, image):
        inputs = processor.process_images([image.convert("RGB")])
        mask = inputs["input_ids"][0] == processor.image_token_id
        _, rows, cols = (int(n) for n in inputs["image_grid_thw"][0])
        merge = model.spatial_merge_size  # patches per merged cell side
        return unpadded(cols // merge, rows // merge, mask, inputs)


RETRIEVER = ColQwen2_5Omni()
