"""ColPali: PaliGemma-3B with a 128-d projection; pages squared to 448 px, 32x32 patches of
14 px (vidore/colpali-v1.2, v1.3: PEFT adapters over vidore/colpaligemma-3b-pt-448-base)."""

from __future__ import annotations

from rag.models.families.base import RetrieverFamily, unpadded


class ColPali(RetrieverFamily):
    name = "colpali"
    label = "ColPali"
    architectures = ("ColPali",)
    model_types = ("paligemma",)
    examples = ("vidore/colpali-v1.3", "vidore/colpali-v1.2")
    model_class = "ColPali"
    processor_class = "ColPaliProcessor"

    def patch_grid(self, model, processor, image):
        inputs = processor.process_images([image.convert("RGB")])
        mask = processor.get_image_mask(inputs)[0]
        # colpali-engine's ColPali.patch_size fails on transformers 5: read the vision config
        patch_size = model.config.vision_config.patch_size
        n_x, n_y = processor.get_n_patches(image.size, patch_size=patch_size)
        return unpadded(n_x, n_y, mask, inputs)


RETRIEVER = ColPali()
