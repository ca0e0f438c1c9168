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
from rag.index.base import Index
from rag.index.migrate import migrate_v3
from rag.index.modes import (
    BinaryCandidates,
    ExactSearch,
    RerankedSearch,
    pooled_candidates,
)
from rag.index.pooling import pool_pages
from rag.index.records import Document, Hit
from rag.index.scoring import maxsim_flat, top_k
from rag.index.staged import StagedPages, page_chunks, page_lengths
from rag.index.store import DocumentStore

logger = logging.getLogger(__name__)

FORMAT = "visual-rag-local-index"
# v4: sign bits stored beside every document's vectors (auto mode switches to binary search
# without re-indexing), tags in the records; migrated in place from v3 (rag.index.migrate).
# v3: vectors stored in the dtype searched (bf16 by default; v2 stored fp16, converted on every
# rerank); v2: .npy vectors (memory-mappable) and search modes; v1 held safetensors
VERSION = 4
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
    """One document's arrays as loaded: full vectors memory-mapped; its sign bits and pooled
    vectors read when a search layout needs them."""

    document: Document
    folder: Path
    full: np.ndarray  # (tokens, dim) bf16 bits (uint16) or float32
    offsets: np.ndarray  # (pages + 1,) token offsets into ``full``

    def bits(self) -> np.ndarray:
        """(tokens, dim // 64) uint64 sign bits, memory-mapped."""
        return np.load(self.folder / "bits.npy", mmap_mode="r")

    def pooled(self) -> list[torch.Tensor]:
        """The pooled vectors of each page, memory-mapped."""
        pooled = _from_numpy(np.load(self.folder / "pooled.npy", mmap_mode="r"))
        return list(torch.split(pooled, np.load(self.folder / "pooled_lengths.npy").tolist()))

    def prefetch(self, page_numbers: list[int] | None = None) -> None:
        """Ask the kernel to start reading memory-mapped pages' vectors (default: all of the
        document's, in one request) from disk now, so that many pages are read in parallel
        instead of one page fault at a time."""
        if not isinstance(self.full, np.memmap) or not hasattr(os, "posix_fadvise"):
            return
        row_bytes = self.full.strides[0]
        spans = [(0, self.document.pages)] if page_numbers is None else None
        spans = spans or [(number - 1, number) for number in page_numbers]
        with open(self.full.filename, "rb") as handle:
            for first, last in spans:
                start, stop = self.offsets[first], self.offsets[last]
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
        mode: str = Settings.index_mode,
        pool_factor: int = Settings.pool_factor,
        rerank: int = Settings.rerank,
        prefilter: int = Settings.binary_prefilter,
        auto_binary_pages: int = Settings.auto_binary_pages,
    ) -> None:
        self.root = Path(root)
        self.retriever_id = retriever_id
        self.device = device
        self.dtype = _DTYPES[dtype]
        self.mode = mode
        self.pool_factor = pool_factor
        self.rerank = rerank
        self.prefilter = prefilter
        self.auto_binary_pages = auto_binary_pages
        self._lock = threading.RLock()
        self._stored: dict[str, _Stored] = {}
        self._search = None  # built from _stored on first search after a change
        self._rows: list[tuple[str, int]] = []  # page row -> (doc_id, page number)
        self._doc_rows: dict[str, tuple[int, int]] = {}
        self.store = DocumentStore(self.root)
        header = self.store.header()
        if header is not None and header.get("format") == FORMAT and header.get("version") == 3:
            migrate_v3(self.store, VERSION)  # before any document is read
        self._check_header()
        self.store.listen(self._load, self._forget)

    # -- header -----------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        header = self.store.header()
        return None if header is None else int(header["dim"])

    def _check_header(self, dim: int | None = None) -> None:
        """Refuse an index this one cannot search: another format, retriever or dimension, or
        pooled search of an index without (these) pooled vectors."""
        header = self.store.header()
        if header is None:
            return
        again = "index your PDFs again into a new --data-dir"
        self.store.check_header(header, FORMAT, VERSION, self.retriever_id, again)
        stored = header.get("pool_factor")
        if self.mode == "pooled" and stored != self.pool_factor:
            kept = f"pooled vectors of factor {stored}" if stored else "no pooled vectors"
            raise IndexMismatchError(
                f"{self.root} keeps {kept}: set RAG_INDEX_MODE=auto (or exact, binary)"
                + (f" or RAG_POOL_FACTOR={stored}" if stored else "")
                + ", or use another --data-dir"
            )
        if self.mode == "binary" and not header.get("bits"):
            raise IndexMismatchError(
                f"{self.root} keeps no sign bits ({header['dim']}-d vectors are not a multiple "
                "of 64): set RAG_INDEX_MODE=exact or auto"
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

    def _stored_pool_factor(self) -> int | None:
        """The pool factor of the pooled vectors every document keeps (None: none kept): set
        when the index is created in pooled mode, then what the header says."""
        header = self.store.header()
        if header is not None:
            return header.get("pool_factor")
        return self.pool_factor if self.mode == "pooled" else None

    def _keeps_bits(self) -> bool:
        header = self.store.header()
        return bool(header["bits"]) if header is not None else True

    def _write_header(self, dim: int) -> None:
        from rag.index.binary import WORD_BITS

        if self.mode == "binary" and dim % WORD_BITS:
            raise IndexMismatchError(
                f"binary search needs vectors whose dimension is a multiple of {WORD_BITS}, the "
                f"retriever gives {dim}-d: set RAG_INDEX_MODE=exact or auto"
            )
        header = {
            "format": FORMAT,
            "version": VERSION,
            "retriever": self.retriever_id,
            "dim": dim,
            "vectors": self._vector_dtype(),
            "pool_factor": self._stored_pool_factor(),
            "bits": dim % WORD_BITS == 0,
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
            if self.store.header() is None:
                self._write_header(dim)
            self._check_header(dim)

        with self._lock:
            return self.store.commit(document, staged, prepare=header_first)

    def _write_arrays(self, staged: Path, embeddings: Sequence[torch.Tensor], dim: int) -> None:
        """The arrays stored for one document (vectors, their sign bits, pooled vectors if the
        index keeps them), written a chunk of pages at a time: memory does not grow with the
        document's length."""
        from rag.index.binary import WORD_BITS, binarize

        stored = _DTYPES[self._vector_dtype()]
        lengths = page_lengths(embeddings)
        total = sum(lengths)
        numpy_dtype = np.uint16 if stored == torch.bfloat16 else np.float32
        vectors = open_memmap(staged / "vectors.npy", "w+", numpy_dtype, (total, dim))
        bits = None
        if self._keeps_bits() and dim % WORD_BITS == 0:
            bits = open_memmap(staged / "bits.npy", "w+", np.uint64, (total, dim // WORD_BITS))
        pool_factor = self._stored_pool_factor()
        pooled = StagedPages(staged / "pooled.staged") if pool_factor else None
        start = 0
        for chunk_lengths, chunk in page_chunks(embeddings):
            stop = start + chunk.shape[0]
            vectors[start:stop] = _to_numpy(chunk.to(stored))
            if bits is not None:
                bits[start:stop] = binarize(chunk)
            if pooled is not None:
                pooled.append(pool_pages(list(torch.split(chunk, chunk_lengths)), pool_factor))
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
            if within is not None and len(within) <= self.rerank:
                ranked = self._score_exactly(queries, k, scope)  # what a rerank would do
            else:
                ranked = search.search_many(queries, k, within)
            return [[self._hit(rows[row], score) for row, score in hits] for hits in ranked]

    def _score_exactly(
        self, queries: list[torch.Tensor], k: int, scope: Collection[str]
    ) -> list[list[tuple[int, float]]]:
        """Exact MaxSim over every page of a small scope, straight from each document's
        stored vectors (one matmul per document, nothing laid out or copied), in any mode:
        the best ``k`` (row, score) per query."""
        doc_ids = sorted(set(scope), key=lambda doc_id: self._doc_rows[doc_id])
        columns, rows = [], []
        for doc_id in doc_ids:
            stored = self._stored[doc_id]
            stored.prefetch()
            vectors = _from_numpy(stored.full).to(self.device)
            if vectors.dtype != self.dtype:
                vectors = vectors.to(self.dtype)
            columns.append(maxsim_flat(queries, vectors, stored.offsets))
            rows.append(torch.arange(*self._doc_rows[doc_id]))
        if not columns:
            return [[] for _ in queries]
        scores, within = torch.cat(columns, dim=1), torch.cat(rows)
        return [[(int(within[i]), score) for i, score in top_k(row, k)] for row in scores]

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
        document = self._stored[doc_id].document
        image = self.page_image(doc_id, page_number)
        return Hit(doc_id, document.name, page_number, score, image, unit=document.unit)

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

    def search_mode(self, n_pages: int | None = None) -> str:
        """How a search runs now: ``self.mode``, or for "auto" exact while the collection has
        fewer than ``auto_binary_pages`` pages, then binary + exact rerank (exact if the index
        keeps no sign bits)."""
        if self.mode != "auto":
            return self.mode
        n_pages = len(self._rows) if n_pages is None else n_pages
        header = self.store.header() or {}
        return "binary" if n_pages >= self.auto_binary_pages and header.get("bits") else "exact"

    def _build_search(self, docs: list[_Stored]):
        mode = self.search_mode(len(self._rows))
        if mode == "exact":
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

        if mode == "pooled":
            pooled = ExactSearch([p for d in docs for p in d.pooled()], self.device, self.dtype)
            first = pooled_candidates(pooled)
        else:
            bits = [d.bits() for d in docs]
            first = BinaryCandidates(bits, [np.diff(d.offsets) for d in docs], self.prefilter)
        return RerankedSearch(first, len(rows), full_pages, self.rerank, self.dtype)

    def _load(self, document: Document, folder: Path) -> None:
        """A committed document's arrays, as the store finds it (here or by another process).
        Everything stays on disk, memory-mapped: a search layout holds its own copy of what
        it searches (every vector in exact mode), the rest is read for reranks and heatmaps."""
        lengths = np.load(folder / "lengths.npy")
        self._stored[document.doc_id] = _Stored(
            document,
            folder,
            np.load(folder / "vectors.npy", mmap_mode="r"),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        )
        self._search = None

    def _forget(self, doc_id: str) -> None:
        """A document gone from the store: its arrays too."""
        self._stored.pop(doc_id, None)
        self._search = None
