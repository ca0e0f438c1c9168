"""The storage interface every backend implements, and its typed records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Document:
    doc_id: str  # content hash prefix: the same bytes are the same document
    name: str  # file name as uploaded
    pages: int
    added: str  # ISO-8601 UTC


@dataclass(frozen=True)
class Hit:
    doc_id: str
    name: str
    page_number: int  # 1-based
    score: float
    image_path: Path

    @property
    def citation(self) -> str:
        """How answers cite this page: ``[name p.N]``."""
        return f"[{self.name} p.{self.page_number}]"


class Index(ABC):
    """A collection of documents' page images and page multi-vectors, searchable by MaxSim."""

    retriever_id: str

    @abstractmethod
    def staging(self) -> AbstractContextManager[Path]:
        """A scratch folder to render a new document's pages into; removed unless committed."""

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

    @abstractmethod
    def documents(self) -> list[Document]:
        """Every document, oldest first."""

    @abstractmethod
    def get(self, doc_id: str) -> Document | None: ...

    @abstractmethod
    def search(self, query: torch.Tensor, k: int) -> list[Hit]:
        """The k pages with the highest MaxSim against ``query`` (q, dim), best first."""

    def search_many(self, queries: list[torch.Tensor], k: int) -> list[list[Hit]]:
        """``search`` for several queries; backends that can batch them override this."""
        return [self.search(query, k) for query in queries]

    @abstractmethod
    def page_embedding(self, doc_id: str, page_number: int) -> torch.Tensor:
        """The stored (n, dim) multi-vector of one page."""

    # Optional hooks: a local folder holds no connection and is dropped by deleting it.
    def warm(self) -> None:  # noqa: B027
        """Prepare search before the first query (lay out pages, compile kernels)."""

    def close(self) -> None:  # noqa: B027
        """Release connections or locks."""

    def drop(self) -> None:  # noqa: B027
        """Delete the whole collection outside the data folder (public sessions end this way)."""

    def __contains__(self, doc_id: str) -> bool:
        return self.get(doc_id) is not None

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents())
