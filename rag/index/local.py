"""LocalIndex: the embedded default, a self-describing, versioned folder.

Its documents live in a ``DocumentStore`` (rag.index.store: records, page images, staging,
atomic commit, delete, several writers); this module adds the vectors. Layout::

    index.json                  {"format", "version", "retriever", "dim", "mode", "pool_factor",
                                 "vectors": "bfloat16" or "float32"}
    docs/<doc_id>/...           the store's: doc.json, page-NNNN.png
    docs/<doc_id>/vectors.npy   page vectors (tokens, dim) in the index's dtype (bf16 as uint16
                                bits: numpy has no bfloat16), the dtype search computes in
    docs/<doc_id>/lengths.npy   tokens per page (pages,)
    docs/<doc_id>/pooled.npy, pooled_lengths.npy   mode "pooled": pooled vectors, same dtype
    docs/<doc_id>/bits.npy      mode "binary": sign bits (tokens, dim // 64) uint64

The vectors are written into the staged folder before the store commits it, so they come and
go with the document in the same rename. The search mode (rag.index.modes) is recorded in the
header: in "exact" mode the full vectors are held in memory; in the compressed modes only the
compact form is, and the full vectors are memory-mapped from disk for the exact rerank and for
heatmaps. A document's arrays are written a chunk of pages at a time (``embeddings`` may be
``StagedPages`` on disk): adding a long document takes no more memory than a short one.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from rag.config import Settings
from rag.errors import DocumentNotFoundError, IndexMismatchError
from rag.index.base import Document, Hit, Index
from rag.index.modes import (
    BinaryCandidates,
    ExactSearch,
    RerankedSearch,
    pooled_candidates,
)
from rag.index.pooling import pool_pages
from rag.index.staged import StagedPages, page_chunks, page_lengths
from rag.index.store import DocumentStore

logger = logging.getLogger(__name__)

FORMAT = "visual-rag-local-index"
# v3: vectors stored in the dtype searched (bf16 by default; v2 stored fp16, converted on every
# rerank); v2: .npy vectors (memory-mappable) and search modes; v1 held safetensors
VERSION = 3
_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def _to_numpy(vectors: torch.Tensor) -> np.ndarray:
    """bf16 as its uint16 bits (numpy has no bfloat16), float32 as it is."""
    if vectors.dtype == torch.bfloat16:
        return vectors.view(torch.uint16).numpy()
    return vectors.numpy()


def _from_numpy(array: np.ndarray) -> torch.Tensor:
    """The inverse of ``_to_numpy``; a view (of a memory map, maybe: read only)."""
    with warnings.catch_warnings():  # torch warns that a read-only memory map stays read-only
        warnings.simplefilter("ignore", UserWarning)
        tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if array.dtype == np.uint16 else tensor


@dataclass
class _Stored:
    """One document's arrays as loaded: full vectors (in memory or memory-mapped)."""

    document: Document
    full: np.ndarray  # (tokens, dim) bf16 bits (uint16) or float32
    offsets: np.ndarray  # (pages + 1,) token offsets into ``full``
    pooled: list[torch.Tensor] | None = None
    bits: np.ndarray | None = None  # (tokens, dim // 64) uint64

    def prefetch(self, page_numbers: list[int]) -> None:
        """Ask the kernel to start reading memory-mapped pages' vectors from disk now, so
        that many pages are read in parallel instead of one page fault at a time."""
        if not isinstance(self.full, np.memmap) or not hasattr(os, "posix_fadvise"):
            return
        row_bytes = self.full.strides[0]
        with open(self.full.filename, "rb") as handle:
            for number in page_numbers:
                start, stop = self.offsets[number - 1], self.offsets[number]
                os.posix_fadvise(
                    handle.fileno(),
                    self.full.offset + int(start) * row_bytes,
                    int(stop - start) * row_bytes,
                    os.POSIX_FADV_WILLNEED,
                )

    def page(self, page_number: int) -> torch.Tensor:
        """The page's (n, dim) vectors as stored (bf16 or fp32), a view of the (maybe
        memory-mapped) array: read only, copied by whoever converts them."""
        start, stop = self.offsets[page_number - 1], self.offsets[page_number]
        return _from_numpy(self.full[start:stop])


class LocalIndex(Index):
    def __init__(
        self,
        root: Path,
        retriever_id: str,
        *,
        device: str = "cpu",
        dtype: str = "bfloat16",
        mode: str = "exact",
        pool_factor: int = Settings.pool_factor,
        rerank: int = Settings.rerank,
        prefilter: int = Settings.binary_prefilter,
    ) -> None:
        self.root = Path(root)
        self.retriever_id = retriever_id
        self.device = device
        self.dtype = _DTYPES[dtype]
        self.mode = mode
        self.pool_factor = pool_factor
        self.rerank = rerank
        self.prefilter = prefilter
        self._lock = threading.RLock()
        self._stored: dict[str, _Stored] = {}
        self._search = None  # built from _stored on first search after a change
        self._rows: list[tuple[str, int]] = []  # page row -> (doc_id, page number)
        self._doc_rows: dict[str, tuple[int, int]] = {}
        self.store = DocumentStore(self.root, self._load, self._forget)
        self._check_header()

    # -- header -----------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        header = self.store.header()
        return None if header is None else int(header["dim"])

    def _check_header(self, dim: int | None = None) -> None:
        header = self.store.header()
        if header is None:
            return
        again = "index your PDFs again into a new --data-dir"
        self.store.check_header(header, FORMAT, VERSION, self.retriever_id, again)
        built = (header.get("mode"), header.get("pool_factor"))
        if built != (self.mode, self._recorded_pool_factor()):
            raise IndexMismatchError(
                f"{self.root} was built in index mode {built[0]!r}"
                + (f" (pool factor {built[1]})" if built[0] == "pooled" else "")
                + f": set RAG_INDEX_MODE={built[0]} or use another --data-dir"
            )
        if dim is not None and int(header["dim"]) != dim:
            raise IndexMismatchError(
                f"{self.root} holds {header['dim']}-d vectors, the retriever gives {dim}-d"
            )

    def _vector_dtype(self) -> str:
        """The dtype vectors are stored in: the header's once written (an index opened with
        another RAG_INDEX_DTYPE converts when it lays pages out), else this index's."""
        header = self.store.header()
        if header is not None and header.get("vectors") in _DTYPES:
            return header["vectors"]
        return next(name for name, dtype in _DTYPES.items() if dtype == self.dtype)

    def _recorded_pool_factor(self) -> int | None:
        return self.pool_factor if self.mode == "pooled" else None

    def _write_header(self, dim: int) -> None:
        header = {
            "format": FORMAT,
            "version": VERSION,
            "retriever": self.retriever_id,
            "dim": dim,
            "mode": self.mode,
            "pool_factor": self._recorded_pool_factor(),
            "vectors": self._vector_dtype(),
        }
        self.store.write_header(header)

    # -- adding and deleting ----------------------------------------------------------------

    def add(self, document: Document, staged: Path, embeddings: Sequence[torch.Tensor]) -> bool:
        if len(embeddings) != document.pages:
            raise ValueError(f"{document.pages} pages but {len(embeddings)} embeddings")
        dim = int(embeddings[0].shape[-1])
        self._check_header(dim)  # refuse a mismatch before the encoding work
        self._write_arrays(staged, embeddings, dim)  # outside the locks: pooling takes a while

        def header_first() -> None:  # under the writer lock: another process may have made it
            self._check_header(dim)
            if self.store.header() is None:
                self._write_header(dim)

        with self._lock:
            return self.store.commit(document, staged, prepare=header_first)

    def _write_arrays(self, staged: Path, embeddings: Sequence[torch.Tensor], dim: int) -> None:
        """The arrays stored for one document in this index's mode, written a chunk of pages at
        a time: memory does not grow with the document's length."""
        stored = _DTYPES[self._vector_dtype()]
        lengths = page_lengths(embeddings)
        total = sum(lengths)
        numpy_dtype = np.uint16 if stored == torch.bfloat16 else np.float32
        vectors = open_memmap(staged / "vectors.npy", "w+", numpy_dtype, (total, dim))
        bits = None
        if self.mode == "binary":
            from rag.index.binary import WORD_BITS, binarize

            bits = open_memmap(staged / "bits.npy", "w+", np.uint64, (total, dim // WORD_BITS))
        pooled = StagedPages(staged / "pooled.staged") if self.mode == "pooled" else None
        start = 0
        for chunk_lengths, chunk in page_chunks(embeddings):
            stop = start + chunk.shape[0]
            vectors[start:stop] = _to_numpy(chunk.to(stored))
            if bits is not None:
                bits[start:stop] = binarize(chunk)
            if pooled is not None:
                pooled.append(pool_pages(list(torch.split(chunk, chunk_lengths)), self.pool_factor))
            start = stop
        for array in (vectors, bits):
            if array is not None:
                array.flush()
        np.save(staged / "lengths.npy", np.array(lengths, dtype=np.int64))
        if pooled is not None:
            rows = open_memmap(staged / "pooled.npy", "w+", numpy_dtype, (pooled.tokens, dim))
            start = 0
            for _lengths, chunk in pooled.chunks():
                rows[start : start + chunk.shape[0]] = _to_numpy(chunk.to(stored))
                start += chunk.shape[0]
            rows.flush()
            np.save(staged / "pooled_lengths.npy", np.array(pooled.lengths, dtype=np.int64))
            pooled.path.unlink()

    def delete(self, doc_id: str) -> Document:
        with self._lock:
            return self.store.delete(doc_id)

    # -- reading ----------------------------------------------------------------------------

    def page_embedding(self, doc_id: str, page_number: int) -> torch.Tensor:
        with self._lock:
            self.store.refresh()
            if doc_id not in self._stored:
                raise DocumentNotFoundError(f"no document with id {doc_id}")
            return self._stored[doc_id].page(page_number).float()

    def search(
        self, query: torch.Tensor, k: int, scope: Collection[str] | None = None
    ) -> list[Hit]:
        return self.search_many([query], k, scope)[0]

    def search_many(
        self, queries: list[torch.Tensor], k: int, scope: Collection[str] | None = None
    ) -> list[list[Hit]]:
        """The k best pages for each query (of the documents in ``scope`` only, if given),
        scored together in one pass over the pages."""
        with self._lock:
            search, rows = self._searcher()
            within = None if scope is None else self._scope_rows(scope)
            ranked = search.search_many(queries, k, within)
            return [[self._hit(rows[row], score) for row, score in hits] for hits in ranked]

    def _scope_rows(self, scope: Collection[str]) -> torch.Tensor:
        """The page rows of the documents in ``scope``, ascending (each document's pages are
        consecutive rows: this costs in proportion to the scope's pages)."""
        missing = sorted(set(scope) - set(self._doc_rows))
        if missing:
            raise DocumentNotFoundError(f"no document with id {', '.join(missing)}")
        spans = sorted(self._doc_rows[doc_id] for doc_id in set(scope))
        if not spans:
            return torch.zeros(0, dtype=torch.long)
        return torch.cat([torch.arange(start, stop) for start, stop in spans])

    # -- in-memory state --------------------------------------------------------------------

    def _hit(self, row: tuple[str, int], score: float) -> Hit:
        doc_id, page_number = row
        name = self._stored[doc_id].document.name
        return Hit(doc_id, name, page_number, score, self.page_image(doc_id, page_number))

    def warm(self) -> None:
        """Lay out the pages and, in binary mode, compile the popcount kernel (~6 s the first
        time, ~0.5 s from numba's cache) so that no query pays for it."""
        with self._lock:
            self._searcher()
        if self.mode == "binary":
            from rag.index.binary import warmup

            warmup()

    def _searcher(self):
        """Lay out all pages for this mode once after each change; searches reuse it."""
        self.store.refresh()
        if self._search is None:
            docs = sorted(
                self._stored.values(), key=lambda d: (d.document.added, d.document.doc_id)
            )
            self._rows = [
                (d.document.doc_id, number)
                for d in docs
                for number in range(1, d.document.pages + 1)
            ]
            self._doc_rows = {}  # doc_id -> (first row, last row + 1)
            start = 0
            for d in docs:
                self._doc_rows[d.document.doc_id] = (start, start + d.document.pages)
                start += d.document.pages
            self._search = self._build_search(docs)
        return self._search, self._rows

    def _build_search(self, docs: list[_Stored]):
        if self.mode == "exact":
            pages = [d.page(n) for d in docs for n in range(1, d.document.pages + 1)]
            return ExactSearch(pages, self.device, self.dtype)
        rows = self._rows

        def full_pages(chosen: list[int]) -> list[torch.Tensor]:
            by_document: dict[str, list[int]] = {}
            for row in chosen:
                by_document.setdefault(rows[row][0], []).append(rows[row][1])
            for doc_id, numbers in by_document.items():  # the disk reads them all at once
                self._stored[doc_id].prefetch(numbers)
            pages = [self._stored[rows[row][0]].page(rows[row][1]) for row in chosen]
            return [page.to(self.device) for page in pages]

        if self.mode == "pooled":
            pooled = ExactSearch([p for d in docs for p in d.pooled], self.device, self.dtype)
            first = pooled_candidates(pooled)
        else:
            bits = [d.bits for d in docs]
            first = BinaryCandidates(bits, [np.diff(d.offsets) for d in docs], self.prefilter)
        return RerankedSearch(first, len(rows), full_pages, self.rerank, self.dtype)

    def _load(self, document: Document, folder: Path) -> None:
        """A committed document's arrays, as the store finds it (here or by another process)."""
        # Vectors stay on disk, memory-mapped: the search layout holds its own copy of what it
        # searches (every vector in exact mode), the rest is read for reranks and heatmaps.
        lengths = np.load(folder / "lengths.npy")
        stored = _Stored(
            document,
            np.load(folder / "vectors.npy", mmap_mode="r"),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        )
        if self.mode == "pooled":
            pooled = _from_numpy(np.load(folder / "pooled.npy", mmap_mode="r"))
            lengths = np.load(folder / "pooled_lengths.npy").tolist()
            stored.pooled = list(torch.split(pooled, lengths))
        elif self.mode == "binary":
            stored.bits = np.load(folder / "bits.npy")
        self._stored[document.doc_id] = stored
        self._search = None

    def _forget(self, doc_id: str) -> None:
        """A document gone from the store: its arrays too."""
        self._stored.pop(doc_id, None)
        self._search = None
