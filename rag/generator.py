"""The answerer: a vision-language model that reads the retrieved page images.

Three prompt paths over transformers, chosen by the checkpoint's config:
- ``qwen_vl``: Qwen2-VL / Qwen2.5-VL chat template, images sized by qwen-vl-utils'
  ``process_vision_info`` within the Settings pixel budget;
- ``chat_template``: Idefics3 / SmolVLM, the generic image-text-to-text chat template;
- ``paligemma``: PaliGemma "mix" checkpoints, whose prompt is ``<image>...answer en QUESTION``.
Each page is shown with its citation label (``[name p.N]``) and the instruction asks the model
to cite pages by those labels. ``stream`` and ``answer`` decode greedily, so they agree.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from PIL import Image

from rag.config import Settings
from rag.errors import ModelNotFoundError
from rag.models import (
    attention_options,
    generator_family,
    locate,
    resolve_device,
    resolve_dtype,
)
from rag.torch_compat import ensure_torchvision

logger = logging.getLogger(__name__)

INSTRUCTION = (
    "Answer the question using only the document pages above. Cite the page each fact comes "
    "from with its label, for example {example}. If the pages do not contain the answer, say so."
    "\nQuestion: {question}"
)
# PaliGemma's detection/segmentation tokens survive skip_special_tokens.
_PALIGEMMA_TOKENS = re.compile(r"<(?:loc\d{4}|seg\d{3})>")


@dataclass(frozen=True)
class PageImage:
    label: str  # the citation the answer should use, e.g. "[report.pdf p.3]"
    image: Image.Image


class Generator:
    def __init__(self, model, processor, family: str, settings: Settings) -> None:
        self.model = model.eval()
        self.processor = processor
        self.family = family
        self.settings = settings
        self._lock = threading.Lock()  # one generation at a time per model

    @classmethod
    def load(cls, settings: Settings) -> Generator:
        ensure_torchvision()
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source = locate(settings.generator, "RAG_GENERATOR")
        family = generator_family(source)
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                source.model_id,
                dtype=dtype,
                device_map=device,
                local_files_only=source.local_files_only,
                **attention_options(settings.attn_implementation),
            )
            processor = AutoProcessor.from_pretrained(
                source.model_id, local_files_only=source.local_files_only
            )
        except OSError as error:
            first = (str(error).strip().splitlines() or ["OSError"])[0][:200]
            raise ModelNotFoundError(
                f"answerer {settings.generator!r} could not be loaded ({first}); set "
                "RAG_GENERATOR to a complete local folder or download it first"
            ) from error
        logger.info("answerer %s (%s) on %s/%s", settings.generator, family, device, dtype)
        return cls(model, processor, family, settings)

    def answer(
        self, question: str, pages: list[PageImage], max_new_tokens: int | None = None
    ) -> str:
        """The whole answer at once (greedy decoding)."""
        inputs = self.build_inputs(question, pages)
        with self._lock, torch.inference_mode():
            output = self.model.generate(**inputs, **self._generation_kwargs(max_new_tokens))
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self._clean(self.processor.decode(new_tokens, skip_special_tokens=True))

    def stream(
        self, question: str, pages: list[PageImage], max_new_tokens: int | None = None
    ) -> Iterator[str]:
        """The answer as it is generated: successive text pieces whose concatenation equals
        ``answer(question, pages)``. Closing the iterator early (a user who went away) stops
        the generation at the next token, freeing the model for the next request."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        inputs = self.build_inputs(question, pages)
        streamer = TextIteratorStreamer(
            self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        cancelled = threading.Event()
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self.model.generate(
                        **inputs,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopWhen(cancelled)]),
                        **self._generation_kwargs(max_new_tokens),
                    )
            except BaseException as error:  # re-raised in the consumer below
                failure.append(error)
                streamer.end()

        worker = threading.Thread(target=generate, daemon=True, name="generate")
        worker.start()
        try:
            for raw in streamer:
                piece = self._clean(raw)
                if piece:
                    yield piece
        finally:
            cancelled.set()
            worker.join()
        if failure:
            raise failure[0]

    def build_inputs(self, question: str, pages: list[PageImage]):
        """Tokenised prompt + pixel values for this family, on the model's device."""
        if not pages:
            raise ValueError("no pages to answer from")
        builders = {
            "qwen_vl": self._qwen_inputs,
            "chat_template": self._chat_template_inputs,
            "paligemma": self._paligemma_inputs,
        }
        inputs = builders[self.family](question, pages)
        return inputs.to(self.model.device)

    def _instruction(self, question: str, pages: list[PageImage]) -> str:
        return INSTRUCTION.format(example=pages[0].label, question=question.strip())

    def _qwen_inputs(self, question: str, pages: list[PageImage]):
        from qwen_vl_utils import process_vision_info

        content: list[dict] = []
        for page in pages:
            content.append({"type": "text", "text": page.label})
            content.append(
                {
                    "type": "image",
                    "image": page.image.convert("RGB"),
                    "min_pixels": self.settings.answer_min_pixels,
                    "max_pixels": self.settings.answer_max_pixels,
                }
            )
        content.append({"type": "text", "text": self._instruction(question, pages)})
        messages = [{"role": "user", "content": content}]
        prompt = self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        images, _ = process_vision_info(messages)
        return self.processor(text=[prompt], images=images, padding=True, return_tensors="pt")

    def _chat_template_inputs(self, question: str, pages: list[PageImage]):
        content: list[dict] = []
        for page in pages:
            content += [{"type": "text", "text": page.label}, {"type": "image"}]
        content.append({"type": "text", "text": self._instruction(question, pages)})
        messages = [{"role": "user", "content": content}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        images = [[page.image.convert("RGB") for page in pages]]
        return self.processor(text=[prompt], images=images, return_tensors="pt")

    def _paligemma_inputs(self, question: str, pages: list[PageImage]):
        # Mix checkpoints follow task prefixes, not instructions: "answer en <question>".
        prompt = "<image>" * len(pages) + f"answer en {question.strip()}"
        images = [[page.image.convert("RGB") for page in pages]]
        return self.processor(text=[prompt], images=images, return_tensors="pt")

    def _generation_kwargs(self, max_new_tokens: int | None) -> dict:
        return {
            "max_new_tokens": max_new_tokens or self.settings.max_new_tokens,
            "do_sample": False,
        }

    def _clean(self, text: str) -> str:
        return _PALIGEMMA_TOKENS.sub("", text) if self.family == "paligemma" else text


class _StopWhen:
    """A transformers stopping criterion that fires once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )
