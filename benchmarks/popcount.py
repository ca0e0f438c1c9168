"""Pick the Hamming MaxSim kernel by measurement: ``python -m benchmarks.popcount``.

Scores one binarised query (20 tokens) against 10,000 ColPali-shaped pages (1030 x 128, random
sign bits: popcount speed does not depend on the data) with each candidate, checks every
candidate returns the same scores as ``rag.index.binary.hamming_maxsim``, and prints pages/s (median
and best of interleaved rounds; the machine may be shared) with the ratio to torch's ±1 bf16
matmul, which costs what exact bf16 search costs. ``run`` measures (a ``Result``), ``report``
writes it as Markdown (to ``--out``, or ``benchmarks/out/results-popcount.md``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit, prange

from benchmarks.report import header, machine, parser, run_and_publish, table
from rag.index.binary import BinaryPages, _popcount, binarize, hamming_maxsim, warmup
from rag.index.scoring import PackedPages, maxsim_packed

Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
RESULTS = "results-popcount.md"
REFERENCE = "torch ±1 bf16 matmul (maxsim_packed)"


@njit(inline="always")
def _swar_popcount(x):
    """The classic bit-trick popcount (LLVM may recognise it and emit POPCNT)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(parallel=True, fastmath=True, cache=True)
def numba_scalar(query, pages, offsets):
    """Straight loops, any word count: query token outer, page token inner, words innermost."""
    n_pages = offsets.shape[0] - 1
    n_query, words = query.shape
    scores = np.empty(n_pages, np.float32)
    for page in prange(n_pages):
        total = 0
        for t in range(n_query):
            best = 1 << 30
            for token in range(offsets[page], offsets[page + 1]):
                distance = 0
                for w in range(words):
                    distance += _popcount(query[t, w] ^ pages[token, w])
                best = min(best, distance)
            total += 64 * words - 2 * best
        scores[page] = total
    return scores


def _page_lanes(popcount):
    """Vectorised over page tokens: each page is de-interleaved into two word arrays first."""

    @njit(parallel=True, fastmath=True)
    def kernel(query, pages, offsets):
        n_pages = offsets.shape[0] - 1
        n_query = query.shape[0]
        longest = 0
        for page in range(n_pages):
            longest = max(longest, offsets[page + 1] - offsets[page])
        chunks = min(n_pages, 64)
        scores = np.empty(n_pages, np.float32)
        for chunk in prange(chunks):
            low = np.empty(longest, np.uint64)
            high = np.empty(longest, np.uint64)
            for page in range(chunk * n_pages // chunks, (chunk + 1) * n_pages // chunks):
                start = offsets[page]
                length = offsets[page + 1] - start
                for j in range(length):
                    low[j] = pages[start + j, 0]
                    high[j] = pages[start + j, 1]
                total = 0
                for t in range(n_query):
                    a, b = query[t, 0], query[t, 1]
                    best = 1 << 30
                    for j in range(length):
                        best = min(best, popcount(a ^ low[j]) + popcount(b ^ high[j]))
                    total += 128 - 2 * best
                scores[page] = total
        return scores

    return kernel


numba_page_lanes = _page_lanes(_popcount)
numba_page_lanes_swar = _page_lanes(_swar_popcount)


def numpy_bitwise_count(query, pages, offsets, pages_per_chunk=64):
    """np.bitwise_count on (query, chunk tokens, words) XORs, per-page minima by reduceat."""
    dim = 64 * query.shape[1]
    n_pages = offsets.shape[0] - 1
    scores = np.empty(n_pages, np.float32)
    for first in range(0, n_pages, pages_per_chunk):
        last = min(first + pages_per_chunk, n_pages)
        start, stop = offsets[first], offsets[last]
        distance = np.bitwise_count(query[:, None, :] ^ pages[None, start:stop, :])
        distance = distance.sum(axis=2, dtype=np.int32)  # (query tokens, chunk tokens)
        best = np.minimum.reduceat(distance, offsets[first:last] - start, axis=1)
        scores[first:last] = (dim - 2 * best).sum(axis=0)
    return scores


def torch_signs_bf16(signs: PackedPages) -> Kernel:
    """±1 bf16 matmul: our exact bf16 MaxSim on pre-expanded sign vectors (no memory saving)."""

    def kernel(query, pages, offsets):
        return maxsim_packed(_unpack(query), signs).numpy()

    return kernel


def laid_out(pages: np.ndarray, offsets: np.ndarray) -> Kernel:
    """rag.index.binary as the index uses it: pages laid out once (``BinaryPages``), scored
    per query."""
    binary = BinaryPages.from_bits(pages, offsets)

    def kernel(query, pages, offsets):
        return binary.scores(query)

    return kernel


def _unpack(bits: np.ndarray) -> torch.Tensor:
    """(n, words) uint64 -> (n, 64 * words) ±1 bf16."""
    as_bytes = np.ascontiguousarray(bits).view(np.uint8)
    unpacked = np.unpackbits(as_bytes, axis=1, bitorder="little")
    return torch.from_numpy(unpacked).to(torch.bfloat16) * 2 - 1


def measure(kernels: dict[str, Kernel], args: tuple, n_pages: int, rounds: int) -> dict:
    """Interleaved rounds (a shared machine slows candidates alike); per-candidate times."""
    times: dict[str, list[float]] = {name: [] for name in kernels}
    for kernel in kernels.values():
        kernel(*args)  # compile / warm caches
    for _ in range(rounds):
        for name, kernel in kernels.items():
            start = time.perf_counter()
            kernel(*args)
            times[name].append(time.perf_counter() - start)
    return {name: (n_pages / statistics.median(t), n_pages / min(t)) for name, t in times.items()}


@dataclass
class Result:
    args: argparse.Namespace
    machine: str
    rates: dict[str, tuple[float, float]]  # candidate: (median pages/s, best pages/s)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("popcount", __doc__, RESULTS)
    arguments.add_argument("--pages", type=int, default=10_000)
    arguments.add_argument("--tokens", type=int, default=1030)
    arguments.add_argument("--query-tokens", type=int, default=20)
    arguments.add_argument("--rounds", type=int, default=5)
    return arguments.parse_args(argv)


def main(argv: list[str] | None = None) -> Result:
    return run_and_publish(argv, parse_args, run, report, RESULTS)


def run(args: argparse.Namespace) -> Result:
    """Every candidate checked against ``hamming_maxsim``, then timed in interleaved rounds."""
    warmup()
    rng = np.random.default_rng(0)
    n_tokens = args.pages * args.tokens
    pages = rng.integers(0, 2**64, size=(n_tokens, 2), dtype=np.uint64)
    offsets = np.arange(args.pages + 1, dtype=np.int64) * args.tokens
    query = binarize(torch.randn(args.query_tokens, 128))
    signs = PackedPages.from_flat(_unpack(pages), [args.tokens] * args.pages)

    kernels: dict[str, Kernel] = {
        "numba, query tokens in SIMD lanes (rag.index.binary)": laid_out(pages, offsets),
        "numba, page tokens in SIMD lanes": numba_page_lanes,
        "numba, page tokens in SIMD lanes, bit-trick popcount": numba_page_lanes_swar,
        "numba, scalar loops": numba_scalar,
        "numpy np.bitwise_count": numpy_bitwise_count,
        REFERENCE: torch_signs_bf16(signs),
    }
    expected = hamming_maxsim(query, pages, offsets)
    for name, kernel in kernels.items():
        got = kernel(query, pages, offsets)
        if not np.array_equal(np.asarray(got, np.float32), expected):
            raise AssertionError(f"{name} disagrees with rag.index.binary.hamming_maxsim")
    rates = measure(kernels, (query, pages, offsets), args.pages, args.rounds)
    return Result(args, machine(), rates)


def report(result: Result) -> str:
    args = result.args
    reference = result.rates[REFERENCE][0]
    cells = [
        (name, f"{median:,.0f}", f"{best:,.0f}", f"{median / reference:.1f}")
        for name, (median, best) in result.rates.items()
    ]
    lines = header(
        "Hamming MaxSim kernels",
        f"command: `python -m benchmarks.popcount --pages {args.pages} --tokens {args.tokens} "
        f"--query-tokens {args.query_tokens} --rounds {args.rounds}`",
        f"machine: {result.machine}",
        f"{args.pages:,} pages x {args.tokens} tokens x 128 dims, {args.query_tokens}-token "
        f"query, {args.rounds} interleaved rounds; x torch: median pages/s against {REFERENCE}",
    )
    columns = ("candidate", "pages/s median", "best", "x torch")
    return "\n".join([*lines, "", *table(cells, columns, "lrrr")]) + "\n"


if __name__ == "__main__":
    main()
