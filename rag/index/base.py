"""The storage interface every backend implements, and its typed records."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rag.index.records import Document, Hit

if TYPE_CHECKING:
    from rag.index.lexical import LexicalIndex, TextHit
    from rag.index.store import DocumentStore

# Pages each side of a hybrid search brings to the fusion: a page the words rank 40th and the
# picture 3rd must be seen by both.
HYBRID_DEPTH = 50


class Index(ABC):
    """A collection of documents' page images and page multi-vectors, searchable by MaxSim."""

    retriever_id: str
    # Set by each backend: its documents (rag.index.store), and the lock serialising its calls.
    store: DocumentStore
    _lock: threading.RLock

    def staging(self) -> AbstractContextManager[Path]:
        """A scratch folder to render a new document's pages into; removed unless committed."""
        return self.store.staging()

    @abstractmethod
    def add(self, document: Document, staged: Path, embeddings: Sequence[torch.Tensor]) -> bool:
        """Atomically add ``document``: its page images in ``staged`` (page-NNNN.png) and one
        (n_i, dim) embedding per page (a list, or ``StagedPages`` read back from disk a chunk at
        a time). After a crash the document is either whole or absent. False (and nothing
        changed) when the document is already there, e.g. committed by another process while
        this one was encoding it."""

    @abstractmethod
    def delete(self, doc_id: str) -> Document:
        """Remove a document; raises DocumentNotFoundError if absent."""

    def documents(self) -> list[Document]:
        """Every document, oldest first (including other processes' commits)."""
        with self._lock:
            return self.store.documents()

    def get(self, doc_id: str) -> Document | None:
        with self._lock:
            return self.store.get(doc_id)

    def page_image(self, doc_id: str, page_number: int) -> Path:
        return self.store.page_image(doc_id, page_number)

    def change_tags(
        self, doc_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> Document:
        """Add and remove a document's tags, atomically across processes (rag.index.store);
        DocumentNotFoundError if absent, TagError for a bad tag."""
        with self._lock:
            return self.store.change_tags(doc_id, add, remove)

    @abstractmethod
    def search(
        self, query: torch.Tensor, k: int, scope: Collection[str] | None = None
    ) -> list[Hit]:
        """The k pages with the highest MaxSim against ``query`` (q, dim), best first; with
        ``scope``, only pages of those documents (k of them whenever they have k pages; an
        empty scope finds nothing; an unknown id raises DocumentNotFoundError). A scope costs
        in proportion to its pages, not to the collection's."""

    def search_many(
        self, queries: list[torch.Tensor], k: int, scope: Collection[str] | None = None
    ) -> list[list[Hit]]:
        """``search`` for several queries; backends that can batch them override this."""
        return [self.search(query, k, scope) for query in queries]

    def search_hybrid(
        self,
        query: torch.Tensor,
        question: str,
        k: int,
        scope: Collection[str] | None = None,
        *,
        mode: str = "rrf",
        weight: float = 0.3,
    ) -> list[Hit]:
        """The k best pages by their pictures (``query``) and their words (``question``),
        fused as ``mode`` says (``rag.index.fusion``; "off": pictures only, "text": words
        only), each side searched ``HYBRID_DEPTH`` deep within ``scope``."""
        from rag.index.fusion import fuse

        if mode == "off":
            return [replace(h, visual_score=h.score) for h in self.search(query, k, scope)]
        depth = max(k, HYBRID_DEPTH)
        lexical = self.lexical
        with self._lock:  # the store is read by one thread at a time
            lexical.sync()
        # One after the other: the words take about a millisecond, and run beside the pictures'
        # search they would slow it more than that (it keeps every core busy).
        text = lexical.search(question, depth, scope, sync=False)
        visual = [] if mode == "text" else self.search(query, depth, scope)
        mode = "rrf" if mode == "text" else mode  # one ranking: its own order
        return fuse(visual, text, k, self._text_hit, mode=mode, weight=weight)

    def index_words(self) -> None:
        """Bring the words' index up to date now (after an add), rather than at the next
        search (a backend that keeps the words with its vectors has nothing to do)."""
        lexical = self.lexical
        with self._lock:
            lexical.sync()

    @property
    def lexical(self) -> LexicalIndex:
        """The pages' words (a tantivy index beside the document store), opened on first use."""
        with self._lock:
            if getattr(self, "_lexical", None) is None:
                from rag.index.lexical import LexicalIndex

                self._lexical = LexicalIndex(self.store)
            return self._lexical

    def _text_hit(self, found: TextHit) -> Hit:
        document = self.store.known(found.doc_id)  # the words were synced with the store
        name, unit = (document.name, document.unit) if document else (found.doc_id, "p.")
        image = self.store.page_image(found.doc_id, found.page_number)
        return Hit(found.doc_id, name, found.page_number, found.score, image, unit=unit)

    @abstractmethod
    def page_embedding(self, doc_id: str, page_number: int) -> torch.Tensor:
        """The stored (n, dim) multi-vector of one page."""

    def drop(self) -> None:
        """Delete every document and the index itself (public sessions end this way)."""
        with self._lock:
            self.store.drop()

    # Optional hooks: a local folder holds no connection.
    def warm(self) -> None:  # noqa: B027
        """Prepare search before the first query (lay out pages, compile kernels)."""

    def close(self) -> None:  # noqa: B027
        """Release connections or locks."""

    def __contains__(self, doc_id: str) -> bool:
        return self.get(doc_id) is not None

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents())
