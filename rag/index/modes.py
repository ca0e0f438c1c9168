"""How LocalIndex searches, per Settings.index_mode: exact, pooled or binary.

Every mode is built once from the documents' stored arrays (never per query) and answers
``search_many(queries, k) -> [[(row, score), ...] per query]`` over page rows.

- exact: every page's full vectors packed in memory (bf16 by default) and scored exactly.
- pooled: HierarchicalTokenPooler-pooled vectors (``pool_factor`` times fewer) scored exactly,
  then the best ``rerank`` pages re-scored exactly from their full vectors.
- binary: 1 bit per dimension (16 B per 128-d token, 1/16 of bf16), scored by Hamming MaxSim
  (``rag.binary.BinaryPages.top``: on large indexes a 64-bit prefilter pass first), then the
  best ``rerank`` pages re-scored exactly from full vectors memory-mapped from disk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import torch

from rag.scoring import PackedPages, Workspace, maxsim_packed_many, top_k

Ranked = list[tuple[int, float]]


class ExactSearch:
    def __init__(self, pages: Sequence[torch.Tensor], device: str, dtype: torch.dtype) -> None:
        self.packed = PackedPages.from_pages([page.to(device) for page in pages], dtype)

    def scores(self, queries: list[torch.Tensor]) -> torch.Tensor:
        """(n_queries, n_pages) exact MaxSim."""
        return maxsim_packed_many(queries, self.packed)

    def search_many(self, queries: list[torch.Tensor], k: int) -> list[Ranked]:
        if self.packed.n_pages == 0:
            return [[] for _ in queries]
        return [top_k(row, k) for row in self.scores(queries)]


Candidates = Callable[[list[torch.Tensor], int], list[list[int]]]


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
        self.first_stage = first_stage  # (queries, how many) -> candidate rows per query
        self.n_pages = n_pages
        self.full_pages = full_pages  # rows -> their full vectors, read together
        self.rerank = rerank
        self.dtype = dtype
        self.workspace = Workspace()  # one buffer for every rerank's layout, not fresh memory
        self._lock = threading.Lock()

    def search_many(self, queries: list[torch.Tensor], k: int) -> list[Ranked]:
        if self.n_pages == 0:
            return [[] for _ in queries]
        wanted = min(max(k, self.rerank), self.n_pages)
        results = []
        for query, candidates in zip(queries, self.first_stage(queries, wanted), strict=True):
            with self._lock:
                pages = self.full_pages(candidates)
                packed = PackedPages.from_pages(pages, self.dtype, self.workspace)
                exact = maxsim_packed_many([query], packed)[0]
            results.append([(candidates[i], score) for i, score in top_k(exact, k)])
        return results


def pooled_candidates(pooled: ExactSearch) -> Candidates:
    """The best pages by exact MaxSim on pooled vectors."""

    def candidates(queries: list[torch.Tensor], wanted: int) -> list[list[int]]:
        scores = pooled.scores(queries)
        return [torch.topk(row, wanted).indices.tolist() for row in scores]

    return candidates


class BinaryCandidates:
    """The best pages by Hamming MaxSim over documents' sign bits (tokens, dim // 64) and
    tokens per page, laid out here once; ``prefilter`` as in ``BinaryPages.top``."""

    def __init__(self, bits: list[np.ndarray], lengths: list[np.ndarray], prefilter: int) -> None:
        from rag.binary import BinaryPages

        self.pages = BinaryPages.concatenate(bits, lengths)
        self.prefilter = prefilter

    def __call__(self, queries: list[torch.Tensor], wanted: int) -> list[list[int]]:
        from rag.binary import binarize

        return [self.pages.top(binarize(q), wanted, self.prefilter)[0].tolist() for q in queries]
