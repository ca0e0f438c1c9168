"""Rerankers: a second stage that scores the first stage's best pages again, one by one, with a
model that reads the question and the page together (RAG_RERANKER).

``text:MODEL`` is a cross-encoder over the page's words (a transformers sequence-classification
model, e.g. BAAI/bge-reranker-v2-m3, XLM-RoBERTa): its score is the relevance logit; a page
without words gets no score and is kept after the scored ones. ``visual:MODEL`` is a
vision-language model of an answerer family judging the page's picture (e.g.
lightonai/MonoQwen2-VL-v0.1, a LoRA adapter over Qwen2-VL-2B-Instruct, loaded over its base):
one forward pass a page, no generation; its score is the log-probability of "True" against
"False" as the next token (MonoT5's objective, MonoQwen's prompt). A retriever, an image model
given as ``text:`` or a text-only one given as ``visual:`` is refused in one line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import torch
from PIL import Image

from rag.config import Settings, parse_reranker
from rag.errors import ConfigError, ModelNotFoundError, UnsupportedModelError
from rag.index.records import Hit
from rag.models.checkpoints import (
    ModelSource,
    configured,
    has_file,
    locate,
    pretrained_options,
)
from rag.models.families import answerer_family, retrievers
from rag.models.torch_compat import ensure_torchvision

logger = logging.getLogger(__name__)

__all__ = ["TextReranker", "VisualReranker", "check", "load_reranker", "reorder", "yes_no"]

SETTING = "RAG_RERANKER"
# MonoQwen2-VL-v0.1's prompt and answer tokens (its model card): the image, then this.
PROMPT = (
    "Assert the relevance of the previous image document to the following query, "
    "answer True or False. The query is: {query}"
)
YES, NO = "True", "False"
TEXT_MAX_TOKENS = 512  # question + page words a pair; bge-reranker-v2-m3's recommended length
TEXT_BATCH = 8  # pairs a forward pass
EXAMPLES = {"text": "BAAI/bge-reranker-v2-m3", "visual": "lightonai/MonoQwen2-VL-v0.1"}


class TextReranker:
    """A cross-encoder scoring (question, page words) pairs."""

    reads: Literal["words", "picture"] = "words"

    def __init__(self, model, tokenizer, model_id: str) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id

    @classmethod
    def load(cls, settings: Settings, model_id: str) -> TextReranker:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        source = locate(model_id, SETTING)
        check("text", source)
        model = loaded(AutoModelForSequenceClassification, source, settings)
        tokenizer = loading(AutoTokenizer, source.adapter_base or model_id, source)
        return cls(model, tokenizer, model_id)

    @torch.inference_mode()
    def score(self, question: str, pages: Sequence[str]) -> list[float | None]:
        """One score per page's words (higher: more relevant); None for a page without words."""
        scores: list[float | None] = [None] * len(pages)
        present = [i for i, text in enumerate(pages) if text.strip()]
        for start in range(0, len(present), TEXT_BATCH):
            batch = present[start : start + TEXT_BATCH]
            inputs = self.tokenizer(
                [question] * len(batch),
                [pages[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=TEXT_MAX_TOKENS,
                return_tensors="pt",
            ).to(self.model.device)
            logits = self.model(**inputs).logits.float()  # (batch, labels)
            for i, value in zip(batch, relevance(logits), strict=True):
                scores[i] = value
        return scores


class VisualReranker:
    """A vision-language model asked, page by page, whether the page answers the question."""

    reads: Literal["words", "picture"] = "picture"

    def __init__(self, model, processor, model_id: str, max_pixels: int) -> None:
        self.model = model.eval()
        self.processor = processor
        self.model_id = model_id
        self.max_pixels = max_pixels
        self.yes, self.no = answer_tokens(processor.tokenizer, model_id)

    @classmethod
    def load(cls, settings: Settings, model_id: str) -> VisualReranker:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source = locate(model_id, SETTING)
        check("visual", source)
        model = loaded(AutoModelForImageTextToText, source, settings)
        processor = loading(AutoProcessor, processor_id(source), source)
        if not getattr(processor, "chat_template", None):
            raise UnsupportedModelError(
                f"{model_id} has no chat template to ask it about a page: set {SETTING} to an "
                f"instruction-following model such as {EXAMPLES['visual']}"
            )
        return cls(model, processor, model_id, settings.answer_max_pixels)

    def score(self, question: str, pages: Sequence[Image.Image]) -> list[float]:
        """One score per page image: log P("True") against "False" (at most 0: higher is more
        relevant)."""
        return [self.score_page(question, page) for page in pages]

    @torch.inference_mode()
    def score_page(self, question: str, page: Image.Image) -> float:
        inputs = self.inputs(question, page).to(self.model.device)
        logits = self.model(**inputs, logits_to_keep=1).logits  # (1, 1, vocab)
        return yes_no(logits[0, -1], self.yes, self.no)

    def inputs(self, question: str, page: Image.Image):
        """The processor's inputs for one page (within ``max_pixels``) and the question, through
        the model's own chat template, the answer about to start."""
        content = [{"type": "image"}, {"type": "text", "text": PROMPT.format(query=question)}]
        messages = [{"role": "user", "content": content}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        image = fitted(page.convert("RGB"), self.max_pixels)
        return self.processor(text=[prompt], images=[image], return_tensors="pt")


Reranker = TextReranker | VisualReranker


def load_reranker(settings: Settings) -> Reranker:
    """The reranker RAG_RERANKER names, on the settings' device and dtype."""
    spec = parse_reranker(settings.reranker)
    if spec is None:
        raise ConfigError(f"no reranker is set: {SETTING}=text:MODEL or visual:MODEL")
    ensure_torchvision()
    kind, model_id = spec
    reranker = (TextReranker if kind == "text" else VisualReranker).load(settings, model_id)
    logger.info("reranker %s (%s) on %s", model_id, kind, reranker.model.device)
    return reranker


def reorder(hits: Sequence[Hit], scores: Sequence[float | None], k: int) -> list[Hit]:
    """The best ``k`` of ``hits`` by ``scores`` (one each, highest first), each carrying its
    ``rerank_score``; hits without a score (None) come after the scored ones, and equal scores
    keep the first stage's order."""
    order = sorted(range(len(hits)), key=lambda i: (scores[i] is None, -(scores[i] or 0.0)))
    return [replace(hits[i], rerank_score=scores[i]) for i in order[:k]]


def relevance(logits: torch.Tensor) -> list[float]:
    """A cross-encoder's (batch, labels) logits as one score a pair: the logit of a one-label
    head; with two labels (irrelevant, relevant), the log-probability of the second."""
    if logits.shape[-1] == 1:
        return logits[:, 0].tolist()
    return logits.log_softmax(-1)[:, -1].tolist()


def yes_no(logits: torch.Tensor, yes: int, no: int) -> float:
    """log P(yes) / (P(yes) + P(no)) from next-token ``logits`` (vocab,): the log-softmax of
    the two tokens' logits alone.

    >>> round(yes_no(torch.tensor([5.0, 1.0, 1.0]), 1, 2), 4)
    -0.6931
    >>> round(yes_no(torch.tensor([0.0, 2.0, 0.0]), 1, 2), 4)
    -0.1269
    """
    pair = torch.stack([logits[yes], logits[no]]).float()
    return float(pair.log_softmax(-1)[0])


def answer_tokens(tokenizer, model_id: str) -> tuple[int, int]:
    """The ids of the first tokens of ``YES`` and ``NO`` (the whole words in a real vocabulary);
    a tokenizer that cannot tell them apart is refused."""
    yes, no = (tokenizer.encode(word, add_special_tokens=False)[:1] for word in (YES, NO))
    if not yes or not no or yes == no:
        raise UnsupportedModelError(
            f"{model_id}: its tokenizer does not tell {YES!r} from {NO!r} in one token"
        )
    return yes[0], no[0]


def fitted(image: Image.Image, max_pixels: int) -> Image.Image:
    """``image`` scaled down (aspect kept) to at most ``max_pixels`` pixels."""
    width, height = image.size
    if width * height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (width * height))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def loaded(auto_class, source: ModelSource, settings: Settings):
    """The model at ``source`` through ``auto_class``; a PEFT adapter is loaded over its base
    and merged into it (scored as fast as the base)."""
    options = pretrained_options(settings, source)
    model = loading(auto_class, source.adapter_base or source.model_id, source, **options)
    if source.adapter_base:
        from peft import PeftModel

        adapter = PeftModel.from_pretrained(model, source.model_id)
        model = adapter.merge_and_unload()
    return configured(model, settings)


def loading(auto_class, model_id: str, source: ModelSource, **options):
    """``auto_class.from_pretrained(model_id)``, a missing or incomplete checkpoint named in one
    line."""
    try:
        options = {"local_files_only": source.local_files_only} | options
        return auto_class.from_pretrained(model_id, **options)
    except OSError as error:
        first = (str(error).strip().splitlines() or ["OSError"])[0][:200]
        raise ModelNotFoundError(
            f"reranker {source.model_id!r} could not be loaded ({first}); set {SETTING} to a "
            "complete local folder or download it first"
        ) from error


def processor_id(source: ModelSource) -> str:
    """Where the processor is: the checkpoint's own, else (an adapter shipped without one, as
    MonoQwen2-VL) its base's."""
    own = ModelSource(source.model_id, source.config, source.local_files_only)
    if source.adapter_base and not has_file(own, "preprocessor_config.json"):
        return source.adapter_base
    return source.model_id


def check(kind: str, source: ModelSource) -> None:
    """Refuse, in one line and before any weight loads, a checkpoint that cannot rerank as
    ``kind`` (text, visual): a retriever; an image model as text, or a text-only model as visual;
    as text, anything but a sequence classifier; as visual, a family the app cannot run."""
    model_id, config = source.model_id, source.config
    refuse_retriever(source)
    if kind == "text" and takes_images(config):
        raise UnsupportedModelError(
            f"{model_id} is an image model ({found(config)}), not a cross-encoder over words: "
            f"set {SETTING}=visual:{model_id}"
        )
    if kind == "text" and not any(
        name.endswith("ForSequenceClassification") for name in architectures(source)
    ):
        raise UnsupportedModelError(
            f"{model_id}: {found(config)} is not a cross-encoder (a sequence-classification "
            f"model): set {SETTING}=text:{EXAMPLES['text']}, or one like it"
        )
    if kind == "visual" and not takes_images(config):
        raise UnsupportedModelError(
            f"{model_id} is a text-only model ({found(config)}): visual: needs an image-text "
            f"model such as {EXAMPLES['visual']}; for a cross-encoder over the page's words set "
            f"{SETTING}=text:{model_id}"
        )
    if kind == "visual":
        answerer_family(source)  # an image-text model of a family the app runs, or refused


def refuse_retriever(source: ModelSource) -> None:
    names = set(architectures(source))
    family = next((f for f in retrievers() if names & set(f.architectures)), None)
    if family is not None:
        raise UnsupportedModelError(
            f"{source.model_id} is a retriever ({family.label}), not a reranker: set "
            f"RAG_RETRIEVER to it, and {SETTING} to text:{EXAMPLES['text']} or "
            f"visual:{EXAMPLES['visual']}"
        )


def architectures(source: ModelSource) -> list[str]:
    return list(source.config.get("architectures") or [])


def takes_images(config: dict) -> bool:
    """A multimodal config: a vision tower's config inside it."""
    return any(key in config for key in ("vision_config", "visual", "vision_tower"))


def found(config: dict) -> str:
    return f"model type {config.get('model_type')!r}"
