"""Qwen2-VL and Qwen2.5-VL answerers: chat template with each page's label and image; page
images sized by qwen-vl-utils' ``process_vision_info`` within the pixel budget, in 28-px cells
(14-px patches merged 2x2) (Qwen/Qwen2-VL-2B-Instruct, Qwen/Qwen2.5-VL-3B-Instruct, ...)."""

from __future__ import annotations

from rag.models.families.base import AnswererFamily, history_messages, instruction


class QwenVL(AnswererFamily):
    name = "qwen_vl"
    label = "Qwen2-VL / Qwen2.5-VL"
    architectures = ("Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration")
    model_types = ("qwen2_vl", "qwen2_5_vl")
    examples = ("Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct")
    cell = 28  # pixels per side of one visual token

    def build_inputs(self, processor, question, pages, min_pixels, max_pixels, *, history=()):
        from qwen_vl_utils import process_vision_info

        content: list[dict] = []
        for page in pages:
            content.append({"type": "text", "text": page.caption})
            image = {"type": "image", "image": page.image.convert("RGB")}
            budget = page.budget(max_pixels)
            content.append({**image, "min_pixels": min(min_pixels, budget), "max_pixels": budget})
        content.append({"type": "text", "text": instruction(question, pages)})
        messages = [*history_messages(history), {"role": "user", "content": content}]
        prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        images, _ = process_vision_info(messages, image_patch_size=self.cell // 2)
        return processor(text=[prompt], images=images, padding=True, return_tensors="pt")


ANSWERER = QwenVL()
