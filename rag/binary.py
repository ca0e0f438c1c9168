"""1-bit page vectors and Hamming MaxSim: a cheap first stage before exact rescoring.

``binarize`` keeps one sign bit per component: bit ``b`` of word ``w`` stands for component
``64 * w + b`` and is set when that component is > 0. A bit row stands for the ±1 vector (+1 where
set, -1 elsewhere; zero and NaN count as -1), so ``<s(q), s(p)> = dim - 2 * popcount(q ^ p)`` and

    hamming_maxsim(q, pages)[i] = sum_t max_{j in page i} (dim - 2 * popcount(q_t ^ p_j))

is MaxSim on sign vectors, exactly (integers, returned as float32). A 1030 x 128 ColPali page
takes 16 KB instead of 264 KB in bf16.

The kernel is numba, chosen by measurement (``benchmarks/popcount.py``): it vectorises over a
block of 24 or 32 query tokens held in AVX-512/AVX2 lanes, streams each page's tokens once per
block and reduces with ``min``; ``prange`` splits the pages between threads. Compiled kernels
are cached on disk (``cache=True``); call ``warmup()`` once at start-up to load or compile them
(a few seconds the first time, well under a second from the cache) before the first query.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import torch
from numba import njit, prange, types
from numba.extending import intrinsic

WORD_BITS = 64
_NO_MATCH = 1 << 30  # larger than any Hamming distance

# numba's default (workqueue) threading layer aborts the process if two Python threads run
# parallel kernels at once; the kernel uses every core anyway, so queries take turns.
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


def hamming_maxsim(
    query_bits: np.ndarray, page_bits: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """MaxSim of one binarised query against every page; returns (n_pages,) float32.

    query_bits: (query_tokens, words) uint64; page_bits: (total_tokens, words) uint64, both from
    ``binarize``; offsets: (n_pages + 1,) int64, page ``i`` owns ``page_bits[offsets[i]:
    offsets[i + 1]]``. A page without tokens scores ``-inf``.

    >>> q = binarize(torch.ones(2, 64))
    >>> p = binarize(torch.cat([torch.ones(1, 64), -torch.ones(1, 64)]))
    >>> hamming_maxsim(q, p, np.array([0, 1, 2])).tolist()  # identical page, opposite page
    [128.0, -128.0]
    """
    query_bits = np.ascontiguousarray(query_bits, dtype=np.uint64)
    page_bits = np.ascontiguousarray(page_bits, dtype=np.uint64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if query_bits.ndim != 2 or page_bits.ndim != 2 or query_bits.shape[1] != page_bits.shape[1]:
        raise ValueError(
            f"query bits {query_bits.shape} and page bits {page_bits.shape} must be "
            "(tokens, words) with the same number of words"
        )
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise ValueError("offsets must be a 1-d array of n_pages + 1 token offsets")
    n_pages = offsets.shape[0] - 1
    if n_pages and (
        offsets[0] < 0 or offsets[-1] > page_bits.shape[0] or np.any(np.diff(offsets) < 0)
    ):
        raise ValueError("offsets must be non-decreasing and within the page bits")
    if n_pages == 0 or query_bits.shape[0] == 0 or query_bits.shape[1] == 0:
        scores = np.zeros(n_pages, np.float32)
        scores[np.diff(offsets) == 0] = -np.inf
        return scores
    chunks = min(n_pages, 16 * numba.get_num_threads())
    with _KERNEL_LOCK:
        if query_bits.shape[1] == 2:  # dim 128: every ColPali-family model
            n_query = query_bits.shape[0]
            if -(-n_query // 24) * 24 < -(-n_query // 32) * 32:  # fewer padded lanes
                return _maxsim_2w_q24(query_bits, page_bits, offsets, chunks)
            return _maxsim_2w_q32(query_bits, page_bits, offsets, chunks)
        return _maxsim_any_w(query_bits, page_bits, offsets, chunks)


def warmup() -> None:
    """Compile (or load from numba's cache) every kernel, so no query pays for it."""
    pages = binarize(torch.randn(6, 128))
    offsets = np.array([0, 2, 2, 6], np.int64)
    for n_query in (1, 30):  # the 24- and 32-lane kernels
        hamming_maxsim(binarize(torch.randn(n_query, 128)), pages, offsets)
    hamming_maxsim(binarize(torch.randn(3, 64)), binarize(torch.randn(6, 64)), offsets)


# -- kernels ---------------------------------------------------------------------------------


@intrinsic
def _popcount(typingctx, word):
    """llvm.ctpop on a uint64: one (V)POPCNT instruction, vectorised by LLVM where it can."""
    signature = types.int64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@njit(inline="always", fastmath=True)
def _maxsim_2w(query, pages, offsets, chunks, lanes):
    """Two words (dim 128) per token; ``lanes`` is a literal so LLVM unrolls it into vectors."""
    n_pages = offsets.shape[0] - 1
    n_query = query.shape[0]
    n_blocks = (n_query + lanes - 1) // lanes
    low = np.zeros(n_blocks * lanes, np.uint64)
    high = np.zeros(n_blocks * lanes, np.uint64)
    for t in range(n_query):
        low[t] = query[t, 0]
        high[t] = query[t, 1]
    scores = np.empty(n_pages, np.float32)
    for chunk in prange(chunks):
        best = np.empty(lanes, np.int64)
        for page in range(chunk * n_pages // chunks, (chunk + 1) * n_pages // chunks):
            start, stop = offsets[page], offsets[page + 1]
            if start == stop:
                scores[page] = -np.inf
                continue
            total = 0
            for block in range(n_blocks):
                first = block * lanes
                for t in range(lanes):
                    best[t] = _NO_MATCH
                for token in range(start, stop):
                    word0 = pages[token, 0]
                    word1 = pages[token, 1]
                    for t in range(lanes):
                        distance = _popcount(low[first + t] ^ word0) + _popcount(
                            high[first + t] ^ word1
                        )
                        best[t] = min(best[t], distance)
                for t in range(min(lanes, n_query - first)):
                    total += 128 - 2 * best[t]
            scores[page] = total
    return scores


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_2w_q24(query, pages, offsets, chunks):
    return _maxsim_2w(query, pages, offsets, chunks, 24)


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_2w_q32(query, pages, offsets, chunks):
    return _maxsim_2w(query, pages, offsets, chunks, 32)


@njit(inline="always", fastmath=True)
def _page_any_w(query_t, n_query, tokens, scratch):
    """MaxSim of one page's (tokens, words) bits: blocks of query tokens in the SIMD lanes."""
    best, distance = scratch[0], scratch[1]
    lanes = best.shape[0]
    words = query_t.shape[0]
    total = 0
    for first in range(0, n_query, lanes):
        for t in range(lanes):
            best[t] = _NO_MATCH
        for token in range(tokens.shape[0]):
            for t in range(lanes):
                distance[t] = 0
            for w in range(words):
                word = tokens[token, w]
                for t in range(lanes):
                    distance[t] += _popcount(query_t[w, first + t] ^ word)
            for t in range(lanes):
                best[t] = min(best[t], distance[t])
        for t in range(min(lanes, n_query - first)):
            total += WORD_BITS * words - 2 * best[t]
    return total


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_any_w(query, pages, offsets, chunks):
    """Any number of words per token: correct, several times slower than the dim-128 path."""
    lanes = 32
    n_pages = offsets.shape[0] - 1
    n_query, words = query.shape
    query_t = np.zeros((words, -(-n_query // lanes) * lanes), np.uint64)
    for t in range(n_query):
        for w in range(words):
            query_t[w, t] = query[t, w]
    scores = np.empty(n_pages, np.float32)
    for chunk in prange(chunks):
        scratch = np.empty((2, lanes), np.int64)
        for page in range(chunk * n_pages // chunks, (chunk + 1) * n_pages // chunks):
            start, stop = offsets[page], offsets[page + 1]
            if start == stop:
                scores[page] = -np.inf
            else:
                scores[page] = _page_any_w(query_t, n_query, pages[start:stop], scratch)
    return scores
