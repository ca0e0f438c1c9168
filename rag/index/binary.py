"""1-bit page vectors and Hamming MaxSim: a cheap first stage before exact rescoring.

``binarize`` keeps one sign bit per component: bit ``b`` of word ``w`` stands for component
``64 * w + b`` and is set when that component is > 0. A bit row stands for the ±1 vector (+1 where
set, -1 elsewhere; zero and NaN count as -1), so ``<s(q), s(p)> = dim - 2 * popcount(q ^ p)`` and

    hamming_maxsim(q, pages)[i] = sum_t max_{j in page i} (dim - 2 * popcount(q_t ^ p_j))

is MaxSim on sign vectors, exactly (integers, returned as float32). A 1030 x 128 ColPali page
takes 16 KB instead of 264 KB in bf16.

``BinaryPages`` lays many pages out once for search, one contiguous plane per 64-bit word.
``BinaryPages.top`` finds the best pages in two passes when there are many: a prefilter pass
scores every page on its first word only (64 of 128 bits, half the work) and keeps
``prefilter`` times as many pages as asked for; the full Hamming MaxSim then ranks those.

The kernels are numba, chosen by measurement (``benchmarks/popcount.py``): they vectorise over
a block of 24 or 32 query tokens held in AVX-512/AVX2 lanes, stream each page's tokens once per
block, two at a time, and reduce with ``min``; ``prange`` splits the pages between threads.
Compiled kernels are cached on disk (``cache=True``); call ``warmup()`` once at start-up to
load or compile them (a few seconds the first time, well under a second from the cache).
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import torch
from numba import njit, prange, types
from numba.extending import intrinsic

WORD_BITS = 64
PREFILTER = 20  # the prefilter pass keeps this many pages per page asked for
# The 64-bit pass costs ~2/3 of a 128-bit scan, so it only pays when it keeps few pages: it runs
# when it keeps at most a quarter of them.
PREFILTER_MAX_SHARE = 0.25
_NO_MATCH = 1 << 30  # larger than any Hamming distance

# numba's default (workqueue) threading layer aborts the process if two Python threads run
# parallel kernels at once; the kernels use every core anyway, so queries take turns.
_KERNEL_LOCK = threading.Lock()


def binarize(vectors: torch.Tensor) -> np.ndarray:
    """Pack the sign bits of (n, dim) vectors into (n, dim // 64) uint64 words.

    >>> bits = binarize(torch.tensor([[1.0, -2.0, 0.5] + [-1.0] * 61]))
    >>> bits.shape, bits.dtype.name, int(bits[0, 0])  # bits 0 and 2 set
    ((1, 1), 'uint64', 5)
    """
    if vectors.ndim != 2:
        raise ValueError(f"expected (n, dim) vectors, got shape {tuple(vectors.shape)}")
    dim = vectors.shape[1]
    if dim % WORD_BITS:
        raise ValueError(f"dim {dim} is not a multiple of {WORD_BITS}")
    positive = (vectors.detach() > 0).cpu().numpy()
    packed = np.packbits(positive, axis=1, bitorder="little")  # (n, dim // 8) uint8
    return np.ascontiguousarray(packed.view("<u8"), dtype=np.uint64)


class BinaryPages:
    """Pages' sign bits laid out once for search.

    ``planes`` is (words, tokens) uint64: word ``w`` of every token in one contiguous row.
    ``offsets`` (n_pages + 1,) int64: page ``i`` owns tokens ``offsets[i]:offsets[i + 1]``.
    """

    def __init__(self, planes: np.ndarray, offsets: np.ndarray) -> None:
        self.planes = np.ascontiguousarray(planes, dtype=np.uint64)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if self.planes.ndim != 2 or self.planes.shape[0] == 0:
            raise ValueError(f"expected (words, tokens) planes, got shape {self.planes.shape}")
        if self.offsets.ndim != 1 or self.offsets.shape[0] < 1:
            raise ValueError("offsets must be a 1-d array of n_pages + 1 token offsets")
        if self.n_pages and (
            self.offsets[0] < 0
            or self.offsets[-1] > self.planes.shape[1]
            or np.any(np.diff(self.offsets) < 0)
        ):
            raise ValueError("offsets must be non-decreasing and within the page bits")
        self._all = np.arange(self.n_pages, dtype=np.int64)

    @classmethod
    def from_bits(cls, bits: np.ndarray, offsets: np.ndarray) -> BinaryPages:
        """From (tokens, words) rows as ``binarize`` returns them."""
        if bits.ndim != 2:
            raise ValueError(f"expected (tokens, words) bits, got shape {bits.shape}")
        return cls(bits.T, offsets)

    @classmethod
    def concatenate(cls, parts: list[np.ndarray], lengths: list[np.ndarray]) -> BinaryPages:
        """Documents' (tokens, words) bits and tokens per page, laid out in one pass (no
        intermediate copy of the whole index)."""
        words = parts[0].shape[1] if parts else 2
        planes = np.empty((words, sum(part.shape[0] for part in parts)), np.uint64)
        start = 0
        for part in parts:
            planes[:, start : start + part.shape[0]] = part.T
            start += part.shape[0]
        all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        return cls(planes, np.concatenate([[0], np.cumsum(all_lengths)]))

    @property
    def n_pages(self) -> int:
        return self.offsets.shape[0] - 1

    @property
    def words(self) -> int:
        return self.planes.shape[0]

    @property
    def nbytes(self) -> int:
        return self.planes.nbytes + self.offsets.nbytes

    def scores(self, query_bits: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Hamming MaxSim of one query (tokens, words) against pages ``rows`` (default: all),
        as float32; a page without tokens scores -inf."""
        query, rows = self._arguments(query_bits, rows)
        if rows.shape[0] == 0 or query.shape[0] == 0:
            return self._degenerate(rows)
        chunks = _chunks(rows.shape[0])
        with _KERNEL_LOCK:
            if self.words == 2:  # dim 128: every ColPali-family model
                kernel = _maxsim_2w_q24 if _fewer_lanes_with_24(query.shape[0]) else _maxsim_2w_q32
                return kernel(query, self.planes, self.offsets, rows, chunks)
            return _maxsim_any_w(query, self.planes, self.offsets, rows, chunks)

    def prefilter_scores(
        self, query_bits: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Hamming MaxSim on the first word (64 bits) of each token only, for pages ``rows``
        (default: all)."""
        query, rows = self._arguments(query_bits, rows)
        if rows.shape[0] == 0 or query.shape[0] == 0:
            return self._degenerate(rows)
        first_words = np.ascontiguousarray(query[:, 0])
        chunks = _chunks(rows.shape[0])
        with _KERNEL_LOCK:
            kernel = _maxsim_1w_q24 if _fewer_lanes_with_24(query.shape[0]) else _maxsim_1w_q32
            return kernel(first_words, self.planes[0], self.offsets, rows, chunks)

    def top(
        self,
        query_bits: np.ndarray,
        n: int,
        prefilter: int = PREFILTER,
        rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` pages with the best Hamming MaxSim (rows, scores; best first) among
        ``rows`` (default: all; the kernels visit only those, so a scope costs in proportion
        to its pages). With ``prefilter`` > 0, a 128-bit or wider index is first narrowed to
        the ``prefilter * n`` best on 64 bits, when that is at most ``PREFILTER_MAX_SHARE`` of
        the pages searched."""
        _, rows = self._arguments(query_bits, rows)
        n = max(0, min(n, rows.shape[0]))
        keep = prefilter * n
        if prefilter > 0 and self.words >= 2 and 0 < keep <= PREFILTER_MAX_SHARE * rows.shape[0]:
            rows = rows[_best(self.prefilter_scores(query_bits, rows), keep)]
        scores = self.scores(query_bits, rows)
        order = _best(scores, n)
        return rows[order], scores[order]

    def _arguments(self, query_bits: np.ndarray, rows: np.ndarray | None):
        query = np.ascontiguousarray(query_bits, dtype=np.uint64)
        if query.ndim != 2 or query.shape[1] != self.words:
            raise ValueError(
                f"query bits {query.shape} must be (tokens, words) with the same number of "
                f"words as the pages ({self.words})"
            )
        if rows is None:
            return query, self._all
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if rows.ndim != 1 or (rows.shape[0] and (rows.min() < 0 or rows.max() >= self.n_pages)):
            raise ValueError(f"page rows must be a 1-d array within 0..{self.n_pages - 1}")
        return query, rows

    def _degenerate(self, rows: np.ndarray) -> np.ndarray:
        """No pages or an empty query: every page scores 0, an empty page -inf."""
        scores = np.zeros(rows.shape[0], np.float32)
        scores[self.offsets[rows + 1] == self.offsets[rows]] = -np.inf
        return scores


def hamming_maxsim(
    query_bits: np.ndarray, page_bits: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """MaxSim of one binarised query against every page; returns (n_pages,) float32.

    query_bits: (query_tokens, words) uint64; page_bits: (total_tokens, words) uint64, both from
    ``binarize``; offsets: (n_pages + 1,) int64, page ``i`` owns ``page_bits[offsets[i]:
    offsets[i + 1]]``. A page without tokens scores ``-inf``. Lays the bits out on every call:
    build a ``BinaryPages`` once to search the same pages many times.

    >>> q = binarize(torch.ones(2, 64))
    >>> p = binarize(torch.cat([torch.ones(1, 64), -torch.ones(1, 64)]))
    >>> hamming_maxsim(q, p, np.array([0, 1, 2])).tolist()  # identical page, opposite page
    [128.0, -128.0]
    """
    return BinaryPages.from_bits(np.asarray(page_bits), offsets).scores(query_bits)


def warmup() -> None:
    """Compile (or load from numba's cache) every kernel, so no query pays for it."""
    offsets = np.array([0, 2, 2, 6], np.int64)
    pages = BinaryPages.from_bits(binarize(torch.randn(6, 128)), offsets)
    for n_query in (1, 30):  # the 24- and 32-lane kernels
        query = binarize(torch.randn(n_query, 128))
        pages.scores(query)
        pages.prefilter_scores(query)
    BinaryPages.from_bits(binarize(torch.randn(6, 64)), offsets).scores(
        binarize(torch.randn(3, 64))
    )


def _fewer_lanes_with_24(n_query: int) -> bool:
    """Whether blocks of 24 query tokens leave fewer idle lanes than blocks of 32."""
    return -(-n_query // 24) * 24 < -(-n_query // 32) * 32


def _chunks(n_rows: int) -> int:
    """Pages are split into this many chunks, many per thread so that threads finish together."""
    return min(n_rows, 16 * numba.get_num_threads())


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n highest scores, best first; ties keep the lower index first."""
    if n <= 0:
        return np.zeros(0, np.int64)
    part = np.arange(scores.shape[0])
    if n < scores.shape[0]:
        nth_best = np.partition(scores, scores.shape[0] - n)[scores.shape[0] - n]
        part = np.flatnonzero(scores >= nth_best)  # every page tied with the n-th too
    return part[np.lexsort((part, -scores[part]))][:n].astype(np.int64)


# -- kernels ---------------------------------------------------------------------------------


@intrinsic
def _popcount(typingctx, word):
    """llvm.ctpop on a uint64: one (V)POPCNT instruction, vectorised by LLVM where it can."""
    signature = types.int64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@njit(inline="always", fastmath=True)
def _lanes(query_words, lanes):
    """Query words padded to whole blocks of ``lanes``."""
    n = query_words.shape[0]
    padded = np.zeros((n + lanes - 1) // lanes * lanes, np.uint64)
    padded[:n] = query_words
    return padded


@njit(inline="always", fastmath=True)
def _maxsim_2w(query, planes, offsets, rows, chunks, lanes):
    """Two words (dim 128) per token; ``lanes`` is a literal so LLVM unrolls it into vectors.
    Page tokens are taken two at a time, which halves the updates of ``best``."""
    n_rows = rows.shape[0]
    low_plane, high_plane = planes[0], planes[1]
    n_query = query.shape[0]
    n_blocks = (n_query + lanes - 1) // lanes
    low = _lanes(query[:, 0].copy(), lanes)
    high = _lanes(query[:, 1].copy(), lanes)
    scores = np.empty(n_rows, np.float32)
    for chunk in prange(chunks):
        best = np.empty(lanes, np.int64)
        for i in range(chunk * n_rows // chunks, (chunk + 1) * n_rows // chunks):
            start, stop = offsets[rows[i]], offsets[rows[i] + 1]
            if start == stop:
                scores[i] = -np.inf
                continue
            total = 0
            for block in range(n_blocks):
                first = block * lanes
                for t in range(lanes):
                    best[t] = _NO_MATCH
                token = start
                while token + 1 < stop:
                    a0, a1 = low_plane[token], high_plane[token]
                    b0, b1 = low_plane[token + 1], high_plane[token + 1]
                    for t in range(lanes):
                        q0, q1 = low[first + t], high[first + t]
                        a = _popcount(q0 ^ a0) + _popcount(q1 ^ a1)
                        b = _popcount(q0 ^ b0) + _popcount(q1 ^ b1)
                        best[t] = min(best[t], a, b)
                    token += 2
                if token < stop:
                    a0, a1 = low_plane[token], high_plane[token]
                    for t in range(lanes):
                        a = _popcount(low[first + t] ^ a0) + _popcount(high[first + t] ^ a1)
                        best[t] = min(best[t], a)
                for t in range(min(lanes, n_query - first)):
                    total += 128 - 2 * best[t]
            scores[i] = total
    return scores


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_2w_q24(query, planes, offsets, rows, chunks):
    return _maxsim_2w(query, planes, offsets, rows, chunks, 24)


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_2w_q32(query, planes, offsets, rows, chunks):
    return _maxsim_2w(query, planes, offsets, rows, chunks, 32)


@njit(inline="always", fastmath=True)
def _maxsim_1w(query_words, plane, offsets, rows, chunks, lanes):
    """One word per token (the prefilter's 64 bits); same scheme as ``_maxsim_2w``. Without the
    two-tokens step LLVM vectorises this loop badly (slower than two words)."""
    n_rows = rows.shape[0]
    n_query = query_words.shape[0]
    n_blocks = (n_query + lanes - 1) // lanes
    words = _lanes(query_words, lanes)
    scores = np.empty(n_rows, np.float32)
    for chunk in prange(chunks):
        best = np.empty(lanes, np.int64)
        for i in range(chunk * n_rows // chunks, (chunk + 1) * n_rows // chunks):
            start, stop = offsets[rows[i]], offsets[rows[i] + 1]
            if start == stop:
                scores[i] = -np.inf
                continue
            total = 0
            for block in range(n_blocks):
                first = block * lanes
                for t in range(lanes):
                    best[t] = _NO_MATCH
                token = start
                while token + 1 < stop:
                    a, b = plane[token], plane[token + 1]
                    for t in range(lanes):
                        q = words[first + t]
                        best[t] = min(best[t], _popcount(q ^ a), _popcount(q ^ b))
                    token += 2
                if token < stop:
                    a = plane[token]
                    for t in range(lanes):
                        best[t] = min(best[t], _popcount(words[first + t] ^ a))
                for t in range(min(lanes, n_query - first)):
                    total += 64 - 2 * best[t]
            scores[i] = total
    return scores


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_1w_q24(query_words, plane, offsets, rows, chunks):
    return _maxsim_1w(query_words, plane, offsets, rows, chunks, 24)


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_1w_q32(query_words, plane, offsets, rows, chunks):
    return _maxsim_1w(query_words, plane, offsets, rows, chunks, 32)


@njit(inline="always", fastmath=True)
def _page_any_w(query_t, n_query, planes, start, stop, scratch):
    """Hamming MaxSim of one page's tokens ``start:stop`` of the planes, any number of words."""
    best, distance = scratch[0], scratch[1]
    lanes = best.shape[0]
    words = planes.shape[0]
    total = 0
    for first in range(0, n_query, lanes):
        for t in range(lanes):
            best[t] = _NO_MATCH
        for token in range(start, stop):
            for t in range(lanes):
                distance[t] = 0
            for w in range(words):
                word = planes[w, token]
                for t in range(lanes):
                    distance[t] += _popcount(query_t[w, first + t] ^ word)
            for t in range(lanes):
                best[t] = min(best[t], distance[t])
        for t in range(min(lanes, n_query - first)):
            total += WORD_BITS * words - 2 * best[t]
    return total


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_any_w(query, planes, offsets, rows, chunks):
    """Any number of words per token: correct, several times slower than the dim-128 path."""
    lanes = 32
    n_rows = rows.shape[0]
    n_query, words = query.shape
    query_t = np.zeros((words, -(-n_query // lanes) * lanes), np.uint64)
    for t in range(n_query):
        for w in range(words):
            query_t[w, t] = query[t, w]
    scores = np.empty(n_rows, np.float32)
    for chunk in prange(chunks):
        scratch = np.empty((2, lanes), np.int64)
        for i in range(chunk * n_rows // chunks, (chunk + 1) * n_rows // chunks):
            start, stop = offsets[rows[i]], offsets[rows[i] + 1]
            if start == stop:
                scores[i] = -np.inf
            else:
                scores[i] = _page_any_w(query_t, n_query, planes, start, stop, scratch)
    return scores
