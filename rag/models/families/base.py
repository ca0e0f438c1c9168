"""What a model family is: the two kinds of family and what each must say about itself.

A retriever family (a colpali-engine Col* model) says how it is recognised from a checkpoint's
config, which colpali-engine classes load it, and where a page's image tokens sit (its patch
grid, from the processor's own geometry). An answerer family (a transformers image-text-to-text
model) says how it is recognised and how a question and page images become its inputs, within
an image budget in its own units. Nothing outside ``rag/models/families/`` branches on a family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from rag.chat import Turn

INSTRUCTION = (
    "Answer the question using only the document pages above. Cite the page each fact comes "
    "from with its label, for example {example}. If the pages do not contain the answer, say so."
    "\nQuestion: {question}"
)


PAGE_TEXT_CHARS = 3000  # of a page's words given to the answerer (a dense page has ~4,000)


@dataclass(frozen=True)
class PatchGrid:
    """Where a page's image tokens sit: an (n_x columns, n_y rows) grid of patches, and a
    boolean mask over the page's token sequence selecting those tokens in the processor's order."""

    n_x: int
    n_y: int
    mask: torch.Tensor  # (seq,) bool


@dataclass(frozen=True)
class PageImage:
    label: str  # the citation the answer should use, e.g. "[report.pdf p.3]"
    image: Image.Image
    text: str = ""  # the page's words, given beside the image with RAG_ANSWER_WITH_TEXT
    max_pixels: int = 0  # this page's own pixel budget (0: the answerer's, from Settings)

    def budget(self, max_pixels: int) -> int:
        """The pixel budget this page is sized within: its own, else ``max_pixels``."""
        return self.max_pixels or max_pixels

    @property
    def caption(self) -> str:
        """What the answerer reads before the page's image: its label, and its words if any."""
        if not self.text:
            return self.label
        return f"{self.label}\nText of this page: {self.text[:PAGE_TEXT_CHARS]}"


class Family:
    """Recognised from a checkpoint's config: ``architectures`` first, then ``model_type``."""

    name: str = ""  # e.g. "colqwen2"
    label: str = ""  # e.g. "ColQwen2", as users know it
    architectures: tuple[str, ...] = ()
    model_types: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()  # published checkpoints, for messages and the README

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class RetrieverFamily(Family):
    """A colpali-engine late-interaction model: loaded by ``model_class`` and
    ``processor_class`` from ``colpali_engine.models``."""

    model_class: str = ""
    processor_class: str = ""
    # Pages cut into tiles whose tokens come tile by tile (not row-major over the page).
    tiled: bool = False

    def prepare(self) -> None:
        """Anything the installed libraries need before this family's classes load (a family
        whose colpali-engine class lags behind transformers fixes that here); once is enough."""

    def trim(self, model: Any) -> None:
        """Drop what the model's forward computes and never reads (the page vectors stay the
        same, bit for bit)."""

    def processor_options(self, max_visual_tokens: int) -> dict[str, int]:
        """Keyword arguments for the processor's ``from_pretrained``; the resolution budget
        (RAG_MAX_VISUAL_TOKENS) where the family has one."""
        return {}

    def limit_pages(self, processor: Any, max_visual_tokens: int) -> bool:
        """Hold a loaded processor to at most ``max_visual_tokens`` per page, for a family whose
        processor takes no such option when loaded; whether the family has such a budget."""
        return False

    def patch_grid(self, model: Any, processor: Any, image: Image.Image) -> PatchGrid:
        """The patch grid of ``image`` as the processor lays it out; the mask indexes the
        page's unpadded token sequence."""
        raise NotImplementedError

    def similarity_maps(
        self,
        processor: Any,
        page_embedding: torch.Tensor,
        query_embedding: torch.Tensor,
        grid: PatchGrid,
    ) -> torch.Tensor:
        """(q, n_x, n_y) similarity of every query token with every image patch (colpali-engine's
        interpretability maths; families that re-order tokens override it)."""
        from colpali_engine.interpretability import get_similarity_maps_from_embeddings

        return get_similarity_maps_from_embeddings(
            image_embeddings=page_embedding.float()[None],
            query_embeddings=query_embedding.float()[None],
            n_patches=(grid.n_x, grid.n_y),
            image_mask=grid.mask[None],
        )[0]


class AnswererFamily(Family):
    """A transformers image-text-to-text model (AutoModelForImageTextToText, AutoProcessor)."""

    # Whether a page's encoding may be kept and reused (rag.models.page_cache): each page's image is
    # processed on its own, and the model takes transformers' ``mm_encoder_outputs``.
    cache_pages: bool = True

    def build_inputs(
        self,
        processor: Any,
        question: str,
        pages: list[PageImage],
        min_pixels: int,
        max_pixels: int,
        *,
        history: Sequence[Turn] = (),
    ) -> Any:
        """Tokenised prompt and pixel values for ``question`` over ``pages`` (on the CPU),
        each page within the pixel budget, in this family's own units, after the earlier
        turns of the conversation (``history``, text only)."""
        raise NotImplementedError

    def text_inputs(self, processor: Any, prompt: str) -> Any | None:
        """Tokenised text-only ``prompt`` (one user turn, no image), for rewriting a follow-up
        as a standalone question; None for a family that cannot follow such instructions."""
        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return processor(text=[text], return_tensors="pt")

    def clean(self, text: str) -> str:
        """Decoded text as shown (a family whose special tokens survive decoding strips them)."""
        return text


def instruction(question: str, pages: list[PageImage]) -> str:
    return INSTRUCTION.format(example=pages[0].label, question=question.strip())


def history_messages(history: Sequence[Turn]) -> list[dict]:
    """Earlier turns as chat-template messages: the user's question, then the reply."""
    messages = []
    for turn in history:
        messages.append({"role": "user", "content": [{"type": "text", "text": turn.question}]})
        if turn.answer:
            messages.append(
                {"role": "assistant", "content": [{"type": "text", "text": turn.answer}]}
            )
    return messages


def chat_template_inputs(
    processor: Any,
    question: str,
    pages: list[PageImage],
    history: Sequence[Turn] = (),
    **options: Any,
) -> Any:
    """The generic image-text-to-text path: the earlier turns, then each page's label and an
    image placeholder in one user turn with the instruction, through the processor's own chat
    template (``options`` go to the processor's call)."""
    content: list[dict] = []
    for page in pages:
        content += [{"type": "text", "text": page.caption}, {"type": "image"}]
    content.append({"type": "text", "text": instruction(question, pages)})
    messages = [*history_messages(history), {"role": "user", "content": content}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    images = [[page.image.convert("RGB") for page in pages]]
    return processor(text=[prompt], images=images, return_tensors="pt", **options)


def unpadded(n_x: int, n_y: int, mask: torch.Tensor, inputs: Any) -> PatchGrid:
    """A grid whose image-token ``mask`` (over the processor's padded sequence) is cut to the
    page's unpadded tokens, which are the rows the retriever returns."""
    attention = inputs["attention_mask"][0].bool()
    return PatchGrid(int(n_x), int(n_y), mask[attention])
