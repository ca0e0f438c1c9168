"""MaxSim late-interaction scoring: pure functions of tensors, no I/O, no models.

``score(q, page) = sum_i max_j <q_i, p_j>`` over the query's token vectors ``q_i`` and the
page's patch vectors ``p_j``. Pages are kept *packed*: every page's vectors concatenated into
one ``(total_tokens, dim)`` tensor plus a ``page_of_token`` index, so variable-length pages
are scored exactly, without padding and without re-laying anything out per query.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Tokens per matmul chunk: bounds the (query_tokens, chunk) similarity block to ~100 MB fp32.
CHUNK_TOKENS = 1 << 20


@dataclass(frozen=True)
class PackedPages:
    """Page multi-vectors laid out once for search.

    vectors: (total_tokens, dim), every page's vectors one after another.
    page_of_token: (total_tokens,) int64, the page row each vector belongs to.
    n_pages: number of pages (rows of the score vector).
    """

    vectors: torch.Tensor
    page_of_token: torch.Tensor
    n_pages: int

    @classmethod
    def from_pages(cls, pages: list[torch.Tensor], dtype: torch.dtype | None = None) -> PackedPages:
        """Pack a list of (n_i, dim) page embeddings."""
        if not pages:
            return cls(torch.empty(0, 0), torch.empty(0, dtype=torch.long), 0)
        lengths = torch.tensor([page.shape[0] for page in pages])
        vectors = torch.cat(pages).to(dtype or pages[0].dtype)
        page_of_token = torch.repeat_interleave(torch.arange(len(pages)), lengths)
        return cls(vectors, page_of_token.to(vectors.device), len(pages))


def maxsim(query: torch.Tensor, page: torch.Tensor) -> torch.Tensor:
    """Reference MaxSim of one query (q, dim) against one page (n, dim); a 0-d float32 tensor.

    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> p = torch.tensor([[0.5, 0.1], [0.2, 0.9]])
    >>> round(float(maxsim(q, p)), 4)  # max(0.5, 0.2) + max(0.1, 0.9)
    1.4
    """
    return (query.float() @ page.float().T).max(dim=1).values.sum()


def maxsim_packed(query: torch.Tensor, packed: PackedPages) -> torch.Tensor:
    """MaxSim of one query (q, dim) against every packed page; returns (n_pages,) float32.

    Computes in the packed vectors' dtype (bf16 is ~6x faster than fp32 on CPU) chunk by chunk,
    reducing each chunk's per-token maxima into per-page maxima with ``scatter_reduce``.
    """
    n_query = query.shape[0]
    best = torch.full((n_query, packed.n_pages), float("-inf"), device=packed.vectors.device)
    query = query.to(device=packed.vectors.device, dtype=packed.vectors.dtype)
    for start in range(0, packed.vectors.shape[0], CHUNK_TOKENS):
        block = packed.vectors[start : start + CHUNK_TOKENS]
        similarities = (query @ block.T).float()  # (q, chunk)
        pages = packed.page_of_token[start : start + CHUNK_TOKENS].expand(n_query, -1)
        best.scatter_reduce_(1, pages, similarities, reduce="amax", include_self=True)
    return best.sum(dim=0)


def top_k(scores: torch.Tensor, k: int) -> list[tuple[int, float]]:
    """The ``k`` best (row, score) pairs, best first; ties keep the lower row first."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return []
    order = torch.argsort(-scores.float(), stable=True)[:k]
    return [(int(row), float(scores[row])) for row in order]
