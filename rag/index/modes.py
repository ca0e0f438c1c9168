"""How LocalIndex searches, per Settings.index_mode: exact, pooled or binary.

Every mode is built once from the documents' stored arrays (never per query) and answers
``search_many(queries, k, rows) -> [[(row, score), ...] per query]`` over page rows, among all
pages or only ``rows`` (a scope: its cost is in proportion to its pages, never a full scan
followed by a filter).

- exact: every page's full vectors packed in memory (bf16 by default) and scored exactly.
- pooled: HierarchicalTokenPooler-pooled vectors (``pool_factor`` times fewer) scored exactly,
  then the best ``rerank`` pages re-scored exactly from their full vectors.
- binary: 1 bit per dimension (16 B per 128-d token, 1/16 of bf16), scored by Hamming MaxSim
  (``rag.index.binary.BinaryPages.top``: on large indexes a 64-bit prefilter pass first), then the
  best ``rerank`` pages re-scored exactly from full vectors memory-mapped from disk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np
import torch

from rag.index.scoring import PackedPages, Workspace, maxsim_packed_many, top_k

Ranked = list[tuple[int, float]]

logger = logging.getLogger(__name__)


# Share of a GPU's free memory an exact layout may take; the rest is for the models (the answerer
# may load after it) and their activations. A larger layout stays in RAM and is searched there.
GPU_SHARE = 0.5


class ExactSearch:
    def __init__(self, pages: Sequence[torch.Tensor], device: str, dtype: torch.dtype) -> None:
        pages = list(pages)
        target = layout_device(device, PackedPages.layout_bytes(pages, dtype))
        try:
            self.packed = PackedPages.from_pages(pages, dtype, device=target)
        except torch.cuda.OutOfMemoryError:  # free memory changed under us
            logger.warning("exact search: the GPU ran out of memory; page vectors stay in RAM")
            self.packed = PackedPages.from_pages(pages, dtype, device="cpu")

    def scores(self, queries: list[torch.Tensor], rows: Rows | None = None) -> torch.Tensor:
        """(n_queries, n_pages) exact MaxSim, or (n_queries, len(rows)) for pages ``rows``."""
        packed = self.packed if rows is None else self.packed.select(rows)
        return maxsim_packed_many(queries, packed)

    def search_many(
        self, queries: list[torch.Tensor], k: int, rows: Rows | None = None
    ) -> list[Ranked]:
        if (self.packed.n_pages if rows is None else len(rows)) == 0:
            return [[] for _ in queries]
        ranked = [top_k(row, k) for row in self.scores(queries, rows)]
        return [_global(hits, rows) for hits in ranked]


Rows = torch.Tensor  # page rows (int64, ascending): a scope


def _global(ranked: Ranked, rows: Rows | None) -> Ranked:
    """Positions within ``rows`` back to page rows."""
    if rows is None:
        return ranked
    return [(int(rows[position]), score) for position, score in ranked]


# (queries, how many, rows or None) -> candidate page rows per query
Candidates = Callable[[list[torch.Tensor], int, Rows | None], list[list[int]]]


def layout_device(device: str, nbytes: int, free_bytes: int | None = None) -> str:
    """Where a search layout of ``nbytes`` goes: ``device``, unless that is a GPU on which it
    would take more than ``GPU_SHARE`` of the free memory (``free_bytes``, default: measured),
    in which case the CPU: slower search rather than an answerer that no longer fits.

    >>> layout_device("cuda", nbytes=4 * 2**30, free_bytes=20 * 2**30)
    'cuda'
    >>> layout_device("cuda:0", nbytes=12 * 2**30, free_bytes=20 * 2**30)
    'cpu'
    >>> layout_device("cpu", nbytes=2**40)
    'cpu'
    """
    if not device.startswith("cuda"):
        return device
    if free_bytes is None:
        free_bytes, _total = torch.cuda.mem_get_info(torch.device(device))
    if nbytes <= free_bytes * GPU_SHARE:
        return device
    logger.warning(
        "exact search keeps its %.1f GB of page vectors in RAM: over %.0f%% of the %.1f GB "
        "free on %s",
        nbytes / 2**30,
        GPU_SHARE * 100,
        free_bytes / 2**30,
        device,
    )
    return "cpu"


class RerankedSearch:
    """A cheap first stage names candidate pages, exact MaxSim ranks its ``rerank`` best."""

    def __init__(
        self,
        first_stage: Candidates,
        n_pages: int,
        full_pages: Callable[[list[int]], list[torch.Tensor]],
        rerank: int,
        dtype: torch.dtype,
    ) -> None:
        self.first_stage = first_stage  # (queries, how many, rows) -> candidate rows per query
        self.n_pages = n_pages
        self.full_pages = full_pages  # rows -> their full vectors, read together
        self.rerank = rerank
        self.dtype = dtype
        self.workspace = Workspace()  # one buffer for every rerank's layout, not fresh memory
        self._lock = threading.Lock()

    def search_many(
        self, queries: list[torch.Tensor], k: int, rows: Rows | None = None
    ) -> list[Ranked]:
        n_pages = self.n_pages if rows is None else len(rows)
        if n_pages == 0:
            return [[] for _ in queries]
        wanted = min(max(k, self.rerank), n_pages)
        results = []
        if rows is not None and len(rows) <= wanted:  # a small scope: every page is reranked
            chosen = [rows.tolist()] * len(queries)
        else:
            chosen = self.first_stage(queries, wanted, rows)
        for query, candidates in zip(queries, chosen, strict=True):
            with self._lock:
                pages = self.full_pages(candidates)
                packed = PackedPages.from_pages(pages, self.dtype, self.workspace)
                exact = maxsim_packed_many([query], packed)[0]
            results.append([(candidates[i], score) for i, score in top_k(exact, k)])
        return results


def pooled_candidates(pooled: ExactSearch) -> Candidates:
    """The best pages by exact MaxSim on pooled vectors."""

    def candidates(queries: list[torch.Tensor], wanted: int, rows: Rows | None) -> list[list[int]]:
        scores = pooled.scores(queries, rows)
        best = [torch.topk(row, wanted).indices for row in scores]
        if rows is not None:
            best = [rows.to(chosen.device)[chosen] for chosen in best]
        return [chosen.tolist() for chosen in best]

    return candidates


class BinaryCandidates:
    """The best pages by Hamming MaxSim over documents' sign bits (tokens, dim // 64) and
    tokens per page, laid out here once; ``prefilter`` as in ``BinaryPages.top``."""

    def __init__(self, bits: list[np.ndarray], lengths: list[np.ndarray], prefilter: int) -> None:
        from rag.index.binary import BinaryPages

        self.pages = BinaryPages.concatenate(bits, lengths)
        self.prefilter = prefilter

    def __call__(
        self, queries: list[torch.Tensor], wanted: int, rows: Rows | None
    ) -> list[list[int]]:
        from rag.index.binary import binarize

        within = None if rows is None else rows.cpu().numpy()
        return [
            self.pages.top(binarize(q), wanted, self.prefilter, within)[0].tolist() for q in queries
        ]
