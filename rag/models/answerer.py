"""The answerer: a vision-language model that reads the retrieved page images.

Any transformers image-text-to-text model; its family (``rag.models.families``, read from the
checkpoint's config) builds the prompt and sizes the page images within the Settings pixel
budget. Each page is shown with its citation label (``[name p.N]``, ``[deck.pptx slide N]``)
and the instruction asks the model to cite pages by those labels. ``stream`` and ``answer``
decode greedily, so they agree.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace

import torch

from rag.chat import Turn, rewrite_prompt, standalone
from rag.config import Settings
from rag.errors import ModelNotFoundError
from rag.models.checkpoints import configured, locate, pretrained_options
from rag.models.families import answerer_family
from rag.models.families.base import AnswererFamily, PageImage
from rag.models.page_cache import (
    PageCache,
    encode,
    image_key,
    merged,
    pixel_keys,
    supported,
)
from rag.models.row_major import row_major_embeddings
from rag.models.torch_compat import ensure_torchvision

logger = logging.getLogger(__name__)

__all__ = ["Answerer", "PageImage"]

# A standalone question is one short line: longer replies are cut by rag.chat.standalone.
REWRITE_TOKENS = 64


class Answerer:
    def __init__(self, model, processor, family: AnswererFamily, settings: Settings) -> None:
        self.model = model.eval()
        row_major_embeddings(model)  # same values, fewer copies (rag.models.row_major)
        self.processor = processor
        self.family = family
        self.settings = settings
        self._lock = threading.Lock()  # one generation at a time per model
        cache_bytes = settings.answer_cache_mb * 2**20
        cached = cache_bytes and family.cache_pages and supported(self.model)
        self.page_cache = PageCache(cache_bytes) if cached else None

    @classmethod
    def load(cls, settings: Settings) -> Answerer:
        ensure_torchvision()
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source = locate(settings.generator, "RAG_GENERATOR")
        family = answerer_family(source)
        options = pretrained_options(settings, source)
        try:
            model = AutoModelForImageTextToText.from_pretrained(source.model_id, **options)
            processor = AutoProcessor.from_pretrained(
                source.model_id, local_files_only=source.local_files_only
            )
        except OSError as error:
            first = (str(error).strip().splitlines() or ["OSError"])[0][:200]
            raise ModelNotFoundError(
                f"answerer {settings.generator!r} could not be loaded ({first}); set "
                "RAG_GENERATOR to a complete local folder or download it first"
            ) from error
        model = configured(model, settings)
        logger.info(
            "answerer %s (%s) on %s/%s",
            settings.generator,
            family.label,
            options["device_map"],
            options["dtype"],
        )
        return cls(model, processor, family, settings)

    def answer(
        self,
        question: str,
        pages: list[PageImage],
        max_new_tokens: int | None = None,
        history: Sequence[Turn] = (),
    ) -> str:
        """The whole answer at once (greedy decoding), after the earlier turns ``history``."""
        return self._generate(self.build_inputs(question, pages, history), max_new_tokens)

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        """``question`` as a standalone question, written from the conversation ``history``
        (text only, greedy); ``question`` itself for a family that cannot rewrite."""
        inputs = self.family.text_inputs(self.processor, rewrite_prompt(question, history))
        if inputs is None:
            return question.strip()
        reply = self._generate(inputs.to(self.model.device), REWRITE_TOKENS)
        return standalone(reply, question)

    def _generate(self, inputs, max_new_tokens: int | None) -> str:
        with self._lock, torch.inference_mode():
            output = self.model.generate(**inputs, **self._generation_kwargs(max_new_tokens))
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self._clean(self.processor.decode(new_tokens, skip_special_tokens=True))

    def stream(
        self,
        question: str,
        pages: list[PageImage],
        max_new_tokens: int | None = None,
        history: Sequence[Turn] = (),
    ) -> Iterator[str]:
        """The answer as it is generated: successive text pieces whose concatenation equals
        ``answer(question, pages, history=history)``. Closing the iterator early (a stop
        button, a user who went away) stops the generation at the next token, freeing the
        model for the next request."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        inputs = self.build_inputs(question, pages, history)
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

    def build_inputs(self, question: str, pages: list[PageImage], history: Sequence[Turn] = ()):
        """The model's inputs on its device: the tokenised prompt, and the pages either as
        pixel values or, with the page cache, already encoded (``mm_encoder_outputs``): a page
        encoded for an earlier question is not encoded again."""
        if not pages:
            raise ValueError("no pages to answer from")
        pages = budgeted(pages, self.settings)
        inputs = self._family_inputs(question, pages, history)
        if self.page_cache is None:
            return inputs
        encoded = merged([self._encoded(page) for page in pages])
        for name in pixel_keys(self.model, inputs):
            del inputs[name]
        inputs["mm_encoder_outputs"] = {"image": encoded}
        return inputs

    def _family_inputs(self, question: str, pages: list[PageImage], history: Sequence[Turn]):
        """Tokenised prompt + pixel values for this family, on the model's device."""
        settings = self.settings
        inputs = self.family.build_inputs(
            self.processor,
            question,
            pages,
            settings.answer_min_pixels,
            settings.answer_max_pixels,
            history=history,
        )
        return inputs.to(self.model.device)

    def _encoded(self, page: PageImage) -> dict:
        """``page``'s image through the vision encoder, from the cache when it was encoded
        before within the same budget."""
        budget = (self.settings.answer_min_pixels, page.budget(self.settings.answer_max_pixels))
        key = image_key(page.image, *budget)
        entry = self.page_cache.get(key)
        if entry is None:
            alone = self._family_inputs("", [page], ())
            with torch.inference_mode():
                entry = encode(self.model, alone)
            self.page_cache.put(key, entry)
        return entry

    def _generation_kwargs(self, max_new_tokens: int | None) -> dict:
        return {
            "max_new_tokens": max_new_tokens or self.settings.max_new_tokens,
            "do_sample": False,
        }

    def _clean(self, text: str) -> str:
        return self.family.clean(text)


def budgeted(pages: list[PageImage], settings: Settings) -> list[PageImage]:
    """The pages with their pixel budgets: the best page (the first) the answerer's, the
    others RAG_ANSWER_REST_MAX_PIXELS where set (never more than the best page's)."""
    rest = min(settings.answer_rest_max_pixels, settings.answer_max_pixels)
    if not rest:
        return pages
    return [pages[0], *(replace(page, max_pixels=rest) for page in pages[1:])]


class _StopWhen:
    """A transformers stopping criterion that fires once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )
