"""How LocalIndex searches, per Settings.index_mode: exact, pooled or binary.

Every mode is built once from the documents' stored arrays (never per query) and answers
``search_many(queries, k) -> [[(row, score), ...] per query]`` over page rows.

- exact: every page's full vectors packed in memory (bf16 by default) and scored exactly.
- pooled: HierarchicalTokenPooler-pooled vectors (``pool_factor`` times fewer) scored exactly,
  then the best ``rerank`` pages re-scored exactly from their full vectors.
- binary: 1 bit per dimension (16 B per 128-d token, 1/16 of bf16), scored by Hamming MaxSim,
  then the best ``rerank`` pages re-scored exactly from full vectors memory-mapped from disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from rag.scoring import PackedPages, maxsim_packed_many, top_k

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


class RerankedSearch:
    """A cheap first stage over all pages, then exact MaxSim on its ``rerank`` best pages."""

    def __init__(
        self,
        first_stage: Callable[[list[torch.Tensor]], torch.Tensor],
        n_pages: int,
        full_pages: Callable[[list[int]], list[torch.Tensor]],
        rerank: int,
        dtype: torch.dtype,
    ) -> None:
        self.first_stage = first_stage
        self.n_pages = n_pages
        self.full_pages = full_pages  # rows -> their full vectors, read together
        self.rerank = rerank
        self.dtype = dtype

    def search_many(self, queries: list[torch.Tensor], k: int) -> list[Ranked]:
        if self.n_pages == 0:
            return [[] for _ in queries]
        rough = self.first_stage(queries)  # (n_queries, n_pages)
        results = []
        for query, row_scores in zip(queries, rough, strict=True):
            wanted = min(max(k, self.rerank), row_scores.shape[0])
            candidates = torch.topk(row_scores, wanted).indices.tolist()  # any order: rescored
            packed = PackedPages.from_pages(self.full_pages(candidates), self.dtype)
            exact = maxsim_packed_many([query], packed)[0]
            results.append([(candidates[i], score) for i, score in top_k(exact, k)])
        return results


def binary_first_stage(bits: np.ndarray, offsets: np.ndarray):
    """Hamming-MaxSim scorer over packed sign bits (tokens, dim // 64) uint64."""
    from rag.binary import binarize, hamming_maxsim

    def scores(queries: list[torch.Tensor]) -> torch.Tensor:
        rows = [hamming_maxsim(binarize(query), bits, offsets) for query in queries]
        return torch.from_numpy(np.stack(rows))

    return scores
