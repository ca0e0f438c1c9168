"""ColQwen2: Qwen2-VL-2B with a 128-d projection; pages at their own aspect ratio in 28-px
cells (14-px patches merged 2x2), at most ``max_num_visual_tokens`` cells (vidore/colqwen2-v1.0,
a PEFT adapter over vidore/colqwen2-base)."""

from __future__ import annotations

from rag.models.families.base import RetrieverFamily, unpadded


class ColQwen2(RetrieverFamily):
    name = "colqwen2"
    label = "ColQwen2"
    architectures = ("ColQwen2",)
    model_types = ("qwen2_vl",)
    examples = ("vidore/colqwen2-v1.0",)
    model_class = "ColQwen2"
    processor_class = "ColQwen2Processor"

    def processor_options(self, max_visual_tokens):
        return {"max_num_visual_tokens": max_visual_tokens} if max_visual_tokens else {}

    def patch_grid(self, model, processor, image):
        inputs = processor.process_images([image.convert("RGB")])
        mask = processor.get_image_mask(inputs)[0]
        # image_size is (width, height), as PIL gives it; cells are merged patches
        merge = model.spatial_merge_size
        n_x, n_y = processor.get_n_patches(image.size, spatial_merge_size=merge)
        return unpadded(n_x, n_y, mask, inputs)


RETRIEVER = ColQwen2()
