"""Pages searched by their pictures and their words together, composed over an index.

``HybridSearch`` takes an index (pictures: MaxSim over its page vectors) and keeps a word
index beside it (words: BM25 in tantivy, ``rag.index.lexical``, over the same document store);
each side ranks ``HYBRID_DEPTH`` pages and ``rag.index.fusion`` makes one ranking of the two.
A backend that keeps the words with its vectors brings its own subclass (Qdrant fuses both in
one request: ``rag.index.qdrant``), named by its ``hybrid`` class attribute.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import replace
from typing import Protocol

import torch

from rag.index.fusion import fuse
from rag.index.lexical import LexicalIndex, TextHit
from rag.index.records import Hit
from rag.index.store import DocumentStore

# Pages each side of a hybrid search brings to the fusion: a page the words rank 40th and the
# picture 3rd must be seen by both.
HYBRID_DEPTH = 50


class Pictures(Protocol):
    """What the hybrid search needs of an index (``rag.index.base.Index`` is one)."""

    store: DocumentStore

    @property
    def lock(self) -> threading.RLock: ...

    def search(
        self, query: torch.Tensor, k: int, scope: Collection[str] | None = None
    ) -> list[Hit]: ...


class HybridSearch:
    """The pages of ``index`` found by their pictures and by their words, fused."""

    def __init__(self, index: Pictures) -> None:
        self.index = index
        self._lexical: LexicalIndex | None = None
        self._opening = threading.Lock()

    @property
    def lexical(self) -> LexicalIndex:
        """The pages' words (a tantivy index beside the document store), opened on first use."""
        with self._opening:
            if self._lexical is None:
                self._lexical = LexicalIndex(self.index.store)
            return self._lexical

    def index_words(self) -> None:
        """Bring the words' index up to date now (after an add), rather than at the next
        search."""
        lexical = self.lexical
        with self.index.lock:  # the store is read by one thread at a time
            lexical.sync()

    def search(
        self,
        query: torch.Tensor,
        question: str,
        k: int,
        scope: Collection[str] | None = None,
        *,
        mode: str = "rrf",
        weight: float = 0.3,
    ) -> list[Hit]:
        """The k best pages by their pictures (``query``, (q, dim)) and their words
        (``question``), fused as ``mode`` says (``rag.index.fusion``; "off": pictures only,
        "text": words only), each side searched ``HYBRID_DEPTH`` deep within ``scope``."""
        if mode == "off":
            hits = self.index.search(query, k, scope)
            return [replace(h, visual_score=h.score) for h in hits]
        depth = max(k, HYBRID_DEPTH)
        self.index_words()
        # One after the other: the words take about a millisecond, and run beside the pictures'
        # search they would slow it more than that (it keeps every core busy).
        text = self.lexical.search(question, depth, scope, sync=False)
        visual = [] if mode == "text" else self.index.search(query, depth, scope)
        mode = "rrf" if mode == "text" else mode  # one ranking: its own order
        return fuse(visual, text, k, self.text_hit, mode=mode, weight=weight)

    def text_hit(self, found: TextHit) -> Hit:
        """The Hit of a page only its words found."""
        store = self.index.store
        document = store.known(found.doc_id)  # the words were synced with the store
        name, unit = (document.name, document.unit) if document else (found.doc_id, "p.")
        image = store.page_image(found.doc_id, found.page_number)
        return Hit(found.doc_id, name, found.page_number, found.score, image, unit=unit)

    def close(self) -> None:
        if self._lexical is not None:
            self._lexical.close()


def hybrid_search(index: Pictures) -> HybridSearch:
    """The hybrid search over ``index``: its backend's own (``hybrid`` class attribute), else
    pictures and words searched apart and fused here."""
    return getattr(type(index), "hybrid", HybridSearch)(index)
