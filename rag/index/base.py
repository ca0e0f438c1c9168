"""The storage interface every backend implements: documents, their page images and words
(through the document store), and the pages' multi-vectors searched by MaxSim.

The records are ``rag.index.records``'s; searching pictures and words together is
``rag.index.hybrid``'s, composed over an index rather than inherited by it."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import torch

from rag.index.records import Document, Hit
from rag.index.staged import StagedPages
from rag.index.store import DocumentStore, load_texts, page_path, save_texts
from rag.words import PageText


class Index(ABC):
    """A collection of documents' page images and page multi-vectors, searchable by MaxSim."""

    retriever_id: str
    # Set by each backend: its documents (rag.index.store), and the lock serialising its calls.
    store: DocumentStore
    _lock: threading.RLock

    @property
    def lock(self) -> threading.RLock:
        """Held while the store is read or changed: it serves one thread at a time."""
        return self._lock

    def staging(self) -> AbstractContextManager[Path]:
        """A scratch folder to render a new document's pages into; removed unless committed."""
        return self.store.staging()

    @staticmethod
    def page_path(staged: Path, page_number: int) -> Path:
        """Where ``add`` expects the image of page ``page_number`` in a staging folder."""
        return page_path(staged, page_number)

    @staticmethod
    def stage_vectors(scratch: Path) -> StagedPages:
        """An on-disk list for a new document's page vectors as the encoder makes them, in a
        scratch folder (``staging``): ``add`` reads it back a chunk at a time."""
        return StagedPages(scratch / "vectors.staged")

    @staticmethod
    def stage_words(staged: Path, texts: Iterable[PageText]) -> None:
        """Keep a new document's words with its staged pages: committed with them by ``add``."""
        save_texts(staged, texts)

    def page_words(self, doc_id: str, page_number: int) -> PageText:
        """One page's words and their boxes, as stored with the document (none if it has no
        words, was indexed before words were kept, or is gone)."""
        texts = load_texts(self.store.folder(doc_id))
        return next((t for t in texts if t.page_number == page_number), PageText(page_number))

    @abstractmethod
    def add(self, document: Document, staged: Path, embeddings: Sequence[torch.Tensor]) -> bool:
        """Atomically add ``document``: its page images in ``staged`` (page-NNNN.png) and one
        (n_i, dim) embedding per page (a list, or ``StagedPages`` read back from disk a chunk at
        a time). After a crash the document is either whole or absent; one that
        ``replaces`` another takes its place at once (``DocumentStore.commit``). False (and nothing
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

    def update(self, doc_id: str, change: Callable[[Document], Document]) -> Document:
        """Rewrite a document's record as ``change`` makes it (owner, visibility, source),
        atomically across processes; DocumentNotFoundError if absent."""
        with self._lock:
            return self.store.update(doc_id, change)

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
