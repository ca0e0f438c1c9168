"""MaxSim late-interaction scoring: pure functions of tensors, no I/O, no models.

``score(q, page) = sum_i max_j <q_i, p_j>`` over the query's token vectors ``q_i`` and the
page's patch vectors ``p_j``. Pages are laid out once for search (``PackedPages``): grouped
into buckets of equal padded length, each bucket one dense ``(pages, length, dim)`` tensor, so
a query is scored as one ``queries @ pages^T`` matmul per chunk followed by a max over a
reshaped view, with nothing re-laid out per query. A page is padded by repeating its own first
vector, which leaves every maximum, hence every score, exactly unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

# Elements of the (query_tokens, chunk) similarity block per step. On CPU small enough to stay in
# cache (faster than large blocks). On a GPU large: each step is a few kernel launches, which a
# CPU-sized block (~25 ColPali pages) would not repay; 1 << 27 bf16 elements is 256 MB of
# temporary memory. Both bound it on any index size.
CHUNK_ELEMENTS = 1 << 19
GPU_CHUNK_ELEMENTS = 1 << 27
# Elements of one (query_tokens, tokens) block of ``maxsim_flat`` (64 MB of float32).
FLAT_ELEMENTS = 1 << 24
# Page lengths are rounded up to a multiple of this: few buckets, at most BUCKET_TOKENS - 1
# repeated vectors per page.
BUCKET_TOKENS = 32
# Pages laid out per block before one copy to another device (~270 MB of ColPali pages in bf16).
STAGE_PAGES = 1024


@dataclass(frozen=True)
class Bucket:
    """Pages of one padded length: ``vectors`` (pages, length, dim), their page ``rows``."""

    rows: torch.Tensor
    vectors: torch.Tensor


@dataclass(frozen=True)
class PackedPages:
    """Page multi-vectors laid out once for search, in buckets of equal padded length."""

    buckets: tuple[Bucket, ...]
    n_pages: int

    @classmethod
    def from_pages(
        cls,
        pages: list[torch.Tensor],
        dtype: torch.dtype | None = None,
        workspace: Workspace | None = None,
        device: torch.device | str | None = None,
    ) -> PackedPages:
        """Lay out a list of (n_i, dim) page embeddings in ``dtype`` on ``device`` (default:
        the pages'); in ``workspace``'s buffer when given (valid until the workspace is used
        again). Pages on another device are laid out there ``STAGE_PAGES`` at a time and
        copied over a block at a time: the target holds the layout and nothing else."""
        if not pages:
            return cls((), 0)
        dtype = dtype or pages[0].dtype
        by_length = bucket_lengths(pages)
        first = pages[0]
        device = torch.device(device) if device is not None else first.device
        dim = first.shape[1]
        sizes = {length: len(rows) * length * dim for length, rows in by_length.items()}
        if workspace is None:
            flat = torch.empty(sum(sizes.values()), dtype=dtype, device=device)
        else:
            flat = workspace.take(sum(sizes.values()), dtype, device)
        buckets, start = [], 0
        for length, rows in sorted(by_length.items()):
            vectors = flat[start : start + sizes[length]].view(len(rows), length, dim)
            start += sizes[length]
            _fill(vectors, [pages[row] for row in rows], staged=device != first.device)
            buckets.append(Bucket(torch.tensor(rows, device=device), vectors))
        return cls(tuple(buckets), len(pages))

    @staticmethod
    def layout_bytes(pages: list[torch.Tensor], dtype: torch.dtype) -> int:
        """Bytes the vectors of ``from_pages(pages, dtype)`` will take."""
        dim = pages[0].shape[1] if pages else 0
        padded = sum(length * len(rows) for length, rows in bucket_lengths(pages).items())
        return padded * dim * torch.empty((), dtype=dtype).element_size()

    @classmethod
    def from_flat(cls, vectors: torch.Tensor, lengths: list[int]) -> PackedPages:
        """Pages stored one after another in ``vectors`` (sum(lengths), dim). When every page has
        the same length the layout is a view of ``vectors``, without a copy."""
        if lengths and min(lengths) == max(lengths) and vectors.shape[0] == sum(lengths):
            dense = vectors.view(len(lengths), lengths[0], vectors.shape[1])
            rows = torch.arange(len(lengths), device=vectors.device)
            return cls((Bucket(rows, dense),), len(lengths))
        return cls.from_pages(list(torch.split(vectors, lengths)))

    @cached_property
    def _places(self) -> tuple[torch.Tensor, torch.Tensor]:
        """For each page row: its bucket, and its position in that bucket (built once)."""
        device = self.buckets[0].vectors.device if self.buckets else "cpu"
        bucket_of = torch.empty(self.n_pages, dtype=torch.long, device=device)
        position = torch.empty(self.n_pages, dtype=torch.long, device=device)
        for number, bucket in enumerate(self.buckets):
            bucket_of[bucket.rows] = number
            position[bucket.rows] = torch.arange(len(bucket.rows), device=device)
        return bucket_of, position

    def select(self, rows: torch.Tensor) -> PackedPages:
        """The pages ``rows`` as a layout of their own (row ``i`` there is ``rows[i]`` here):
        their vectors are copied, so it costs in proportion to ``len(rows)``, not to this
        layout's size.

        >>> pages = [torch.full((n, 2), float(n)) for n in (1, 40, 2, 41)]
        >>> chosen = PackedPages.from_pages(pages).select(torch.tensor([3, 0]))
        >>> chosen.n_pages, [b.vectors[:, 0, 0].tolist() for b in chosen.buckets]
        (2, [[1.0], [41.0]])
        """
        bucket_of, position = self._places
        rows = rows.to(bucket_of.device)
        wanted_bucket, wanted_position = bucket_of[rows], position[rows]
        buckets = []
        for number, bucket in enumerate(self.buckets):
            mine = (wanted_bucket == number).nonzero().squeeze(1)
            if len(mine):
                vectors = bucket.vectors.index_select(0, wanted_position[mine])
                buckets.append(Bucket(mine, vectors))
        return PackedPages(tuple(buckets), len(rows))

    @property
    def nbytes(self) -> int:
        """Bytes held by the layout (vectors and page rows)."""
        return sum(
            b.vectors.nelement() * b.vectors.element_size()
            + b.rows.nelement() * b.rows.element_size()
            for b in self.buckets
        )


class Workspace:
    """One buffer reused by layouts that live for a single query (the pages of a rerank).
    Fresh memory for each would be paid in page faults: ~10 ms for the 36 MB of a 200-page
    rerank on this CPU, 5x the copy itself. Not thread-safe: one user at a time."""

    def __init__(self) -> None:
        self._buffer: torch.Tensor | None = None

    def take(self, numel: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """A 1-d tensor of ``numel`` elements (contents undefined), grown only when too small."""
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        buffer = self._buffer
        if buffer is None or buffer.device != torch.device(device) or buffer.numel() < nbytes:
            buffer = self._buffer = torch.empty(nbytes, dtype=torch.uint8, device=device)
        return buffer[:nbytes].view(dtype)


def bucket_lengths(pages: list[torch.Tensor]) -> dict[int, list[int]]:
    """Page rows by padded length (a multiple of ``BUCKET_TOKENS``)."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for row, page in enumerate(pages):
        if page.shape[0] == 0:
            raise ValueError(f"page {row} has no vectors")
        by_length[-(-page.shape[0] // BUCKET_TOKENS) * BUCKET_TOKENS].append(row)
    return by_length


def _fill(vectors: torch.Tensor, pages: list[torch.Tensor], staged: bool) -> None:
    """Pad ``pages`` into the slots of ``vectors`` (pages, length, dim); ``staged``: through a
    block of ``STAGE_PAGES`` slots on the pages' device, then one copy per block."""
    if not staged:
        for slot, page in zip(vectors, pages, strict=True):
            _pad_into(slot, page)
        return
    for start in range(0, len(pages), STAGE_PAGES):
        chunk = pages[start : start + STAGE_PAGES]
        block = torch.empty(
            (len(chunk), *vectors.shape[1:]), dtype=vectors.dtype, device=chunk[0].device
        )
        for slot, page in zip(block, chunk, strict=True):
            _pad_into(slot, page)
        vectors[start : start + len(chunk)].copy_(block)


def _pad_into(slot: torch.Tensor, page: torch.Tensor) -> None:
    """Copy ``page`` into ``slot`` (converting its dtype) and fill the rest of ``slot`` with
    copies of its first vector, which changes no maximum."""
    n = page.shape[0]
    slot[:n] = page
    slot[n:] = slot[0]


def maxsim(query: torch.Tensor, page: torch.Tensor) -> torch.Tensor:
    """Reference MaxSim of one query (q, dim) against one page (n, dim); a 0-d float32 tensor.

    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> p = torch.tensor([[0.5, 0.1], [0.2, 0.9]])
    >>> round(float(maxsim(q, p)), 4)  # max(0.5, 0.2) + max(0.1, 0.9)
    1.4
    """
    return (query.float() @ page.float().T).max(dim=1).values.sum()


def maxsim_packed(query: torch.Tensor, packed: PackedPages) -> torch.Tensor:
    """MaxSim of one query (q, dim) against every packed page; returns (n_pages,) float32."""
    return maxsim_packed_many([query], packed)[0]


def maxsim_packed_many(
    queries: list[torch.Tensor], packed: PackedPages, chunk_elements: int | None = None
) -> torch.Tensor:
    """MaxSim of several queries (q_i, dim) against every packed page in one pass over the
    pages; returns (n_queries, n_pages) float32.

    Computes ``queries @ pages^T`` (the fast layout) in the pages' dtype (bf16 is ~6x faster
    than fp32 on CPU), a chunk of pages at a time so the similarity block stays within
    ``chunk_elements`` (default: ``CHUNK_ELEMENTS`` on CPU, ``GPU_CHUNK_ELEMENTS`` elsewhere),
    and takes each page's maxima with a max over the block viewed as (query tokens, pages,
    length).
    """
    if not packed.buckets:
        return torch.zeros(len(queries), 0)
    first = packed.buckets[0].vectors
    if chunk_elements is None:
        chunk_elements = CHUNK_ELEMENTS if first.device.type == "cpu" else GPU_CHUNK_ELEMENTS
    stacked = torch.cat(queries).to(device=first.device, dtype=first.dtype)  # all query tokens
    n_tokens, dim = stacked.shape
    best = torch.empty(n_tokens, packed.n_pages, device=first.device)
    for bucket in packed.buckets:
        n, length, _ = bucket.vectors.shape
        step = max(1, chunk_elements // (n_tokens * length))
        for start in range(0, n, step):
            block = bucket.vectors[start : start + step]
            similarities = stacked @ block.reshape(-1, dim).T  # (Q, pages * length)
            maxima = similarities.view(n_tokens, block.shape[0], length).amax(dim=-1)
            best[:, bucket.rows[start : start + step]] = maxima.float()
    owner = torch.repeat_interleave(
        torch.arange(len(queries), device=first.device),
        torch.tensor([query.shape[0] for query in queries], device=first.device),
    )
    scores = torch.zeros(len(queries), packed.n_pages, device=first.device)
    return scores.index_add_(0, owner, best)  # sum each query's token maxima


def maxsim_flat(
    queries: list[torch.Tensor], vectors: torch.Tensor, offsets: np.ndarray
) -> torch.Tensor:
    """MaxSim of several queries (q_i, dim) against pages stored one after another in
    ``vectors`` (tokens, dim; page ``i`` owns rows ``offsets[i]:offsets[i + 1]``), without laying
    them out: a few pages' rows in one ``queries @ rows^T`` (in ``vectors``' dtype), each page's
    maxima by one segment reduction. Returns (n_queries, n_pages) float32. For a few pages
    (a scope) this reads each vector once and copies none.

    >>> pages = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # pages of 2 and 1 tokens
    >>> maxsim_flat([torch.tensor([[1.0, 0.0], [0.0, 1.0]])], pages, np.array([0, 2, 3]))
    tensor([[2.0000, 1.4000]])
    """
    stacked = torch.cat(queries).to(device=vectors.device, dtype=vectors.dtype)
    n_tokens = stacked.shape[0]
    offsets = np.asarray(offsets, dtype=np.int64)
    maxima = np.empty((n_tokens, len(offsets) - 1), np.float32)
    first = 0
    while first < len(offsets) - 1:  # chunks of pages: the similarity block stays bounded
        last = first + 1
        while last < len(offsets) - 1 and (offsets[last + 1] - offsets[first]) * n_tokens <= (
            FLAT_ELEMENTS
        ):
            last += 1
        start, stop = int(offsets[first]), int(offsets[last])
        block = (stacked @ vectors[start:stop].T).float().cpu().numpy()  # (Q, tokens)
        maxima[:, first:last] = np.maximum.reduceat(block, offsets[first:last] - start, axis=1)
        first = last
    owner = np.repeat(np.arange(len(queries)), [query.shape[0] for query in queries])
    scores = np.zeros((len(queries), maxima.shape[1]), np.float32)
    np.add.at(scores, owner, maxima)  # sum each query's token maxima
    return torch.from_numpy(scores)


def top_k(scores: torch.Tensor, k: int) -> list[tuple[int, float]]:
    """The ``k`` best (row, score) pairs, best first; ties keep the lower row first."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return []
    order = torch.argsort(-scores.float(), stable=True)[:k]
    return [(int(row), float(scores[row])) for row in order]
