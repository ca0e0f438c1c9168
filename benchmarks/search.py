"""Search speed and quality per mode on synthetic pages, all in one process.

    python -m benchmarks.search --pages 10000 [--shape colpali|colqwen] [--queries 5]
                                [--out FILE]

Pages are clustered like real page embeddings, so binarisation and pooling lose something
measurable: a shared set of topic centroids, every page a mixture of a few page-specific
variants of them plus a background shared by all pages (margins, white space), every token a
noisy, L2-normalised copy of its topic. A query is ~20 tokens of one target page plus noise.

For every mode: pages/s (median over queries, one untimed warm-up query first), the ratio to
colpali-engine's ``score_multi_vector`` and to our exact bf16 search, bytes per page held in
memory for the scan, and top-10 overlap with exact fp32 MaxSim. Exact fp32 scores of all pages
are computed while the pages are generated, chunk by chunk, so the ground truth never needs
the whole fp32 corpus in memory. A mode whose data would not fit ``--max-ram-gb`` (or the
reference beyond ``--reference-max`` pages) runs on the first ``--subset`` pages: its rate is
that subset's, and its overlap is against exact fp32 restricted to the same subset.

``run`` measures (a ``Result``), ``report`` writes it as Markdown; the report goes to ``--out``
(by default ``benchmarks/out/results.md``; the README cites ``benchmarks/results.md``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks import MATMUL_PEAK_SIZE, cpu_matmul_peak, offline
from benchmarks.report import header, machine, parser, run_and_publish, table
from rag.index.binary import PREFILTER, PREFILTER_MAX_SHARE, BinaryPages, binarize, warmup
from rag.index.pooling import pool_page
from rag.index.scoring import (
    CHUNK_ELEMENTS,
    Bucket,
    PackedPages,
    Workspace,
    maxsim_flat,
    maxsim_packed,
    maxsim_packed_many,
)

DIM = 128
SHAPES = {"colpali": (1030, 1030), "colqwen": (600, 800)}  # tokens per page: (min, max)
MODES = (
    "reference",
    "exact-fp32",
    "exact-bf16",
    "bf16-matmul-only",
    "bf16-compute-bound",
    "bf16-read-bound",
    "pooled-x3",
    "pooled-x3+rerank",
    "binary",
    "binary+rerank",
    "binary-prefilter+rerank",
)
CUDA_MODE = "exact-bf16-cuda"
CHUNK_TOKENS = 1 << 18  # pages are generated and stored this many tokens at a time
RESULTS = "results.md"
BOUNDS = ("bf16-matmul-only", "bf16-compute-bound", "bf16-read-bound")  # rank nothing


# -- synthetic pages --------------------------------------------------------------------------


@dataclass
class Corpus:
    """Deterministic synthetic pages: page ``i`` depends only on (seed, i), so any page can be
    regenerated alone (queries come from target pages before the corpus is streamed).

    Pages come in documents of ``pages_per_doc`` consecutive pages: a document draws
    ``doc_topics`` shared centroids and its own variant of each; each of its pages uses
    ``topics_per_page`` of them, varied again, in its own proportions.
    """

    n_pages: int
    shape: str = "colpali"
    seed: int = 0
    pages_per_doc: int = 20
    n_centroids: int = 512
    doc_topics: int = 12
    topics_per_page: int = 6
    topic_spread: float = 0.6  # document topic = centroid + this * unit noise
    page_spread: float = 0.3  # page topic = document topic + this * unit noise
    token_noise: float = 0.8  # token = page topic + this * unit noise
    background_share: float = 0.3  # tokens on the background shared by every page
    lengths: np.ndarray = field(init=False)
    centroids: np.ndarray = field(init=False)
    background: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        low, high = SHAPES[self.shape]
        rng = np.random.default_rng([self.seed, 0])
        self.lengths = rng.integers(low, high + 1, self.n_pages).astype(np.int64)
        self.centroids = _normalise(rng.standard_normal((self.n_centroids, DIM), np.float32))
        self.background = _normalise(rng.standard_normal((4, DIM), np.float32))

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    def page(self, i: int) -> np.ndarray:
        """(tokens, DIM) float32, rows L2-normalised."""
        return self._page(i)[0]

    def _page(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The page's tokens and, per token, its centre (0-3: the shared background)."""
        doc = np.random.default_rng([self.seed, 4, i // self.pages_per_doc])
        doc_topics = min(self.doc_topics, self.n_centroids)
        topics = self.centroids[doc.choice(self.n_centroids, doc_topics, replace=False)]
        topics = _normalise(topics + self.topic_spread * _unit_noise(doc, doc_topics))
        rng = np.random.default_rng([self.seed, 1, i])
        n_tokens = int(self.lengths[i])
        topics = topics[rng.choice(doc_topics, min(self.topics_per_page, doc_topics), False)]
        centres = _normalise(topics + self.page_spread * _unit_noise(rng, len(topics)))
        centres = np.concatenate([self.background, centres])
        weights = rng.dirichlet(np.ones(len(topics)), 1)[0] * (1 - self.background_share)
        weights = np.concatenate(
            [np.full(len(self.background), self.background_share / len(self.background)), weights]
        )
        owner = rng.choice(len(centres), n_tokens, p=weights / weights.sum())
        tokens = centres[owner] + self.token_noise * _unit_noise(rng, n_tokens)
        return _normalise(tokens), owner

    def pages(self, start: int, stop: int) -> np.ndarray:
        return np.concatenate([self.page(i) for i in range(start, stop)])

    def query(self, target: int, n_tokens: int = 20, noise: float = 0.6) -> torch.Tensor:
        """Tokens of the target page (its content, not its background) plus noise."""
        page, owner = self._page(target)
        rng = np.random.default_rng([self.seed, 2, target])
        content = np.flatnonzero(owner >= len(self.background))
        rows = rng.choice(content if len(content) >= n_tokens else len(page), n_tokens)
        return torch.from_numpy(_normalise(page[rows] + noise * _unit_noise(rng, n_tokens)))


def _unit_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, DIM), np.float32) / np.float32(math.sqrt(DIM))


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# -- pooling ------------------------------------------------------------------------------------


def check_pooling(pages: list[torch.Tensor], pool_factor: int) -> str:
    """Compare ``pool_page`` with colpali-engine's HierarchicalTokenPooler on a few pages."""
    from colpali_engine.compression.token_pooling import HierarchicalTokenPooler

    expected = HierarchicalTokenPooler().pool_embeddings(pages, pool_factor=pool_factor)
    same = sum(
        ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-5)
        for ours, theirs in zip((pool_page(p, pool_factor) for p in pages), expected, strict=True)
    )
    return f"identical to HierarchicalTokenPooler on {same}/{len(pages)} checked pages"


# -- page stores --------------------------------------------------------------------------------


class PageStore:
    """Full page vectors of one dtype, packed, in RAM or (too big for RAM) memory-mapped."""

    def __init__(self, offsets: np.ndarray, dtype: torch.dtype, folder: Path | None) -> None:
        self.offsets = offsets
        self.dtype = dtype
        shape = (int(offsets[-1]), DIM)
        self.on_disk = folder is not None
        if folder is None:
            self._tensor = torch.empty(shape, dtype=dtype)
            self._array = None
        else:
            numpy_dtype = np.int16 if dtype == torch.bfloat16 else np.float32
            self._array = np.lib.format.open_memmap(
                folder / f"vectors-{str(dtype)[6:]}.npy", "w+", numpy_dtype, shape
            )
            self._tensor = None

    def write(self, token: int, vectors: torch.Tensor) -> None:
        vectors = vectors.to(self.dtype)
        if self._tensor is not None:
            self._tensor[token : token + vectors.shape[0]] = vectors
        else:
            raw = vectors.view(torch.int16) if self.dtype == torch.bfloat16 else vectors
            self._array[token : token + vectors.shape[0]] = raw.numpy()

    def _rows(self, start: int, stop: int) -> torch.Tensor:
        if self._tensor is not None:
            return self._tensor[start:stop]
        rows = torch.from_numpy(np.array(self._array[start:stop]))  # a copy in RAM
        return rows.view(torch.bfloat16) if self.dtype == torch.bfloat16 else rows

    def pages(self, rows: np.ndarray) -> list[torch.Tensor]:
        return [self._rows(self.offsets[r], self.offsets[r + 1]) for r in rows]

    def packed(self, n_pages: int) -> PackedPages:
        """The first ``n_pages`` pages, packed in RAM (a view when the store is in RAM)."""
        vectors = self._rows(0, int(self.offsets[n_pages]))
        return PackedPages.from_flat(vectors, np.diff(self.offsets[: n_pages + 1]).tolist())


def packed_pages(pages: list[torch.Tensor], dtype: torch.dtype) -> PackedPages:
    return PackedPages.from_pages(pages, dtype)


# -- search -------------------------------------------------------------------------------------


def top_rows(scores: np.ndarray | torch.Tensor, k: int) -> np.ndarray:
    """Rows of the ``k`` best scores, best first; ties keep the lower row first."""
    scores = scores.numpy() if isinstance(scores, torch.Tensor) else scores
    k = min(k, scores.shape[0])
    rows = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(k)
    return rows[np.lexsort((rows, -scores[rows]))]


_RERANK_WORKSPACE = Workspace()


def rerank(query: torch.Tensor, candidates: np.ndarray, store: PageStore, k: int) -> np.ndarray:
    """Exact MaxSim (in the store's dtype) of the candidate pages, laid out in a reused buffer
    as LocalIndex does; their ``k`` best rows."""
    pages = store.pages(candidates)
    exact = maxsim_packed(query, PackedPages.from_pages(pages, store.dtype, _RERANK_WORKSPACE))
    return candidates[top_rows(exact, k)]


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    return len(set(found.tolist()) & set(truth.tolist())) / len(truth)


def time_queries(
    search: Callable[[torch.Tensor], np.ndarray], queries: list[torch.Tensor], repeats: int = 1
) -> tuple[list[float], list[np.ndarray]]:
    """Seconds per query (the fastest of ``repeats`` runs: other work on a shared machine only
    ever adds time) and each query's result, after one untimed warm-up query."""
    search(queries[0])
    seconds, results = [], []
    for query in queries:
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            result = search(query)
            best = min(best, time.perf_counter() - start)
        results.append(result)
        seconds.append(best)
    return seconds, results


@dataclass
class Row:
    mode: str
    pages_per_s: float
    bytes_per_page: float
    overlap: float  # with exact fp32 on the same pages
    note: str = ""
    scanned: int = 0  # the first ``scanned`` pages were searched
    results: list[np.ndarray] = field(default_factory=list)  # top rows per query
    vs_exact: float = math.nan  # top-k overlap with exact-bf16's, when both searched the same pages


# -- the benchmark ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("search", __doc__, RESULTS)
    arguments.add_argument("--pages", type=int, default=10_000)
    arguments.add_argument("--shape", choices=sorted(SHAPES), default="colpali")
    arguments.add_argument("--queries", type=int, default=5)
    arguments.add_argument("--query-tokens", type=int, default=20)
    arguments.add_argument("--repeats", type=int, default=3, help="time each query this many times")
    arguments.add_argument(
        "--pages-per-doc", type=int, default=20, help="1: unrelated pages (a flat score tail)"
    )
    arguments.add_argument("--k", type=int, default=10)
    arguments.add_argument("--rerank", type=int, default=200, help="candidates rescored exactly")
    arguments.add_argument(
        "--prefilter", type=int, default=PREFILTER, help="binary: 64-bit pass keeps this x rerank"
    )
    arguments.add_argument("--pool-factor", type=int, default=3)
    arguments.add_argument(
        "--pool-pages", type=int, default=10_000, help="pool (and search) at most this many pages"
    )
    arguments.add_argument("--subset", type=int, default=1_000)
    arguments.add_argument("--reference-max", type=int, default=10_000)
    arguments.add_argument("--max-ram-gb", type=float, default=16.0)
    arguments.add_argument("--seed", type=int, default=0)
    arguments.add_argument(
        "--scope-share", type=float, default=0.01, help="scoped rows: this share of documents"
    )
    return arguments.parse_args(argv)


@dataclass
class Scoped:
    """One mode searched over every page and within a scope, in the same run."""

    mode: str
    pages: int
    scope_pages: int
    unscoped_s: float  # median seconds per query
    scoped_s: float
    overlap: float  # scoped top-k with exact fp32 MaxSim within the scope
    outside: bool  # a result outside the scope (must never happen)


@dataclass
class Built:
    """Everything the modes search, built in one streamed pass over the corpus."""

    queries: list[torch.Tensor]
    truth: np.ndarray  # (queries, pages) exact fp32 MaxSim
    offsets: np.ndarray
    bits: np.ndarray
    bf16: PageStore
    fp32: PageStore  # every page, or only the first --subset pages
    pooled: list[torch.Tensor]  # the first --pool-pages pages, pooled, bf16
    subset: int
    seconds: float = 0.0
    pool_note: str = ""
    scoped: list[Scoped] = field(default_factory=list)
    peak_gflops: float = math.nan  # the bf16 matmul rate measured for the compute bound


@dataclass
class Result:
    """What one run measured: a Row per mode, the scoped searches, and how the pages were
    made."""

    args: argparse.Namespace
    machine: str
    rows: list[Row]
    scoped: list[Scoped]
    corpus: dict  # the synthetic pages' shape (Corpus's parameters) and their tokens
    seconds: float  # building every store
    pool_note: str
    peak_gflops: float

    def row(self, mode: str) -> Row:
        return next(row for row in self.rows if row.mode == mode)


def run(args: argparse.Namespace) -> Result:
    """Build the synthetic pages and time every mode on them."""
    offline()
    warmup()
    corpus = Corpus(args.pages, args.shape, args.seed, args.pages_per_doc)
    with tempfile.TemporaryDirectory(prefix="search-bench-") as scratch:
        built = build(args, corpus, Path(scratch))
        rows = run_modes(args, built)
    shape = ("pages_per_doc", "doc_topics", "n_centroids", "topics_per_page", "background_share")
    return Result(
        args=args,
        machine=machine(),
        rows=rows,
        scoped=built.scoped,
        corpus={name: getattr(corpus, name) for name in shape}
        | {"tokens": int(corpus.offsets[-1])},
        seconds=built.seconds,
        pool_note=built.pool_note,
        peak_gflops=built.peak_gflops,
    )


def main(argv: list[str] | None = None) -> Result:
    """Run the benchmark; print its report and write it to --out (or benchmarks/out/)."""
    return run_and_publish(argv, parse_args, run, report, RESULTS)


def build(args: argparse.Namespace, corpus: Corpus, scratch: Path) -> Built:
    """Generate the pages chunk by chunk into every store; exact fp32 scores on the way."""
    offsets = corpus.offsets
    n_tokens = int(offsets[-1])
    rng = np.random.default_rng([args.seed, 3])
    targets = rng.choice(args.pages, args.queries, replace=args.queries > args.pages)
    queries = [corpus.query(int(t), args.query_tokens) for t in targets]

    budget = args.max_ram_gb * 2**30
    bits_bytes = n_tokens * DIM // 8
    bf16_bytes = n_tokens * 2 * DIM
    fp32_bytes = n_tokens * 4 * DIM
    bf16_in_ram = bits_bytes + bf16_bytes <= budget
    fp32_in_ram = bf16_in_ram and bits_bytes + bf16_bytes + fp32_bytes <= budget
    subset = min(args.subset, args.pages)
    pool_pages = min(args.pool_pages, args.pages)
    fp32_offsets = offsets if fp32_in_ram else offsets[: subset + 1]
    built = Built(
        queries=queries,
        truth=np.empty((len(queries), args.pages), np.float32),
        offsets=offsets,
        bits=np.empty((n_tokens, DIM // 64), np.uint64),
        bf16=PageStore(offsets, torch.bfloat16, None if bf16_in_ram else scratch),
        fp32=PageStore(fp32_offsets, torch.float32, None),
        pooled=[],
        subset=subset,
    )
    started = time.perf_counter()
    checked = [torch.from_numpy(corpus.page(i)) for i in range(min(3, args.pages))]
    built.pool_note = check_pooling(checked, args.pool_factor)
    for first, last in _chunks(corpus.lengths, CHUNK_TOKENS):
        start, stop = int(offsets[first]), int(offsets[last])
        vectors = torch.from_numpy(corpus.pages(first, last))
        lengths = corpus.lengths[first:last].tolist()
        chunk = PackedPages.from_flat(vectors, lengths)
        built.truth[:, first:last] = maxsim_packed_many(queries, chunk).numpy()
        built.bf16.write(start, vectors)
        built.bits[start:stop] = binarize(vectors)
        if start < fp32_offsets[-1]:
            built.fp32.write(start, vectors[: int(fp32_offsets[-1]) - start])
        for i, page in enumerate(torch.split(vectors, lengths)):
            if first + i < pool_pages:
                built.pooled.append(pool_page(page, args.pool_factor).to(torch.bfloat16))
    built.seconds = time.perf_counter() - started
    return built


def _chunks(lengths: np.ndarray, tokens: int) -> Iterator[tuple[int, int]]:
    """Consecutive page ranges of about ``tokens`` tokens each."""
    first, total = 0, 0
    for page, length in enumerate(lengths):
        total += int(length)
        if total >= tokens:
            yield first, page + 1
            first, total = page + 1, 0
    if first < len(lengths):
        yield first, len(lengths)


def run_modes(args: argparse.Namespace, built: Built) -> list[Row]:
    """Time every mode on the same queries; one Row per mode."""
    from colpali_engine.utils.processing_utils import BaseVisualRetrieverProcessor

    k, n_pages, bf16, bits, offsets = args.k, args.pages, built.bf16, built.bits, built.offsets
    fp32_pages = len(built.fp32.offsets) - 1
    rows: list[Row] = []

    def measure(mode, search, scanned, bytes_per_page, note):
        seconds, results = time_queries(search, built.queries, args.repeats)
        expected = [top_rows(row[:scanned], k) for row in built.truth]
        agreement = math.nan
        if results[0] is None:  # a bound, not a search
            results = []
        else:
            pairs = zip(results, expected, strict=True)
            agreement = statistics.mean(overlap(r, e) for r, e in pairs)
        if scanned < n_pages:
            note = f"first {scanned:,} pages only (rate and overlap on them); {note}"
        rate = scanned / statistics.median(seconds)
        rows.append(Row(mode, rate, bytes_per_page, agreement, note, scanned, results))

    reference_pages = n_pages if n_pages <= min(args.reference_max, fp32_pages) else built.subset
    page_list = built.fp32.pages(np.arange(reference_pages))
    measure(
        "reference",
        lambda q: top_rows(
            BaseVisualRetrieverProcessor.score_multi_vector([q], page_list, device="cpu")[0], k
        ),
        reference_pages,
        _mean_bytes(page_list),
        "colpali-engine score_multi_vector, fp32, batches of 128 padded pages",
    )

    exact32 = built.fp32.packed(fp32_pages)
    measure(
        "exact-fp32",
        lambda q: top_rows(maxsim_packed(q, exact32), k),
        fp32_pages,
        _packed_bytes(exact32),
        "rag.index.scoring.maxsim_packed",
    )

    exact16 = bf16.packed(built.subset if bf16.on_disk else n_pages)
    measure(
        "exact-bf16",
        lambda q: top_rows(maxsim_packed(q, exact16), k),
        exact16.n_pages,
        _packed_bytes(exact16),
        "rag.index.scoring.maxsim_packed",
    )
    measure(
        "bf16-matmul-only",
        lambda q: _matmul_only(q, exact16),
        exact16.n_pages,
        _packed_bytes(exact16),
        "queries @ pages^T alone, same chunks, no max, no ranking: exact search's ceiling with "
        "this matmul",
    )
    gflops = built.peak_gflops = cpu_matmul_peak(torch.bfloat16) / 1e9
    rows.append(
        Row(
            "bf16-compute-bound",
            compute_bound(gflops, args.query_tokens, offsets[exact16.n_pages] / exact16.n_pages),
            _packed_bytes(exact16),
            math.nan,
            f"no exact search on this CPU can pass this: the query's multiply-adds at the peak "
            f"bf16 matmul rate measured in this run ({gflops:.0f} GFLOP/s, square "
            f"{MATMUL_PEAK_SIZE}x{MATMUL_PEAK_SIZE} products)",
            exact16.n_pages,
        )
    )
    measure(
        "bf16-read-bound",
        lambda q: _read_only(exact16),
        exact16.n_pages,
        _packed_bytes(exact16),
        "every page's vectors read once (a sum over the layout), nothing else: no exact search "
        "on this machine's memory can pass this",
    )
    if torch.cuda.is_available():
        _measure_cuda(measure, exact16, k)

    full = f"full vectors {'memory-mapped from disk' if bf16.on_disk else 'in RAM'}"
    pooled = packed_pages(built.pooled, torch.bfloat16)
    pool_bytes = _packed_bytes(pooled)
    per_page = sum(p.shape[0] for p in built.pooled) / max(len(built.pooled), 1)
    measure(
        "pooled-x3",
        lambda q: top_rows(maxsim_packed(q, pooled), k),
        pooled.n_pages,
        pool_bytes,
        f"{per_page:.0f} tokens/page, exact bf16",
    )
    measure(
        "pooled-x3+rerank",
        lambda q: rerank(q, top_rows(maxsim_packed(q, pooled), args.rerank), bf16, k),
        pooled.n_pages,
        pool_bytes,
        f"then exact bf16 of the top {args.rerank} ({full})",
    )

    binary = BinaryPages.from_bits(bits, offsets)
    bit_bytes = binary.nbytes / n_pages
    measure(
        "binary",
        lambda q: binary.top(binarize(q), k, prefilter=0)[0],
        n_pages,
        bit_bytes,
        "rag.index.binary.BinaryPages: Hamming MaxSim of every page on all 128 bits",
    )
    measure(
        "binary+rerank",
        lambda q: rerank(q, binary.top(binarize(q), args.rerank, prefilter=0)[0], bf16, k),
        n_pages,
        bit_bytes,
        f"then exact bf16 of the top {args.rerank} ({full})",
    )
    keep = args.prefilter * args.rerank
    runs = 0 < keep <= PREFILTER_MAX_SHARE * n_pages
    first = f"64-bit pass keeps {keep:,} pages" if runs else "64-bit pass off (too few pages)"
    measure(
        "binary-prefilter+rerank",
        lambda q: rerank(q, binary.top(binarize(q), args.rerank, args.prefilter)[0], bf16, k),
        n_pages,
        bit_bytes,
        f"{first}, 128 bits pick {args.rerank}, exact bf16 reranks them: RAG_INDEX_MODE=binary",
    )
    built.scoped = run_scoped(args, built, exact16, binary)
    exact = next(row for row in rows if row.mode == "exact-bf16")
    for row in rows:
        row.vs_exact = agreement(row, exact)
    return rows


def agreement(row: Row, exact: Row) -> float:
    """Mean top-k overlap of ``row`` with ``exact`` (NaN unless both searched the same pages)."""
    if row.scanned != exact.scanned or not row.results:
        return math.nan
    pairs = zip(row.results, exact.results, strict=True)
    return statistics.mean(overlap(mine, theirs) for mine, theirs in pairs)


def scope_rows(args: argparse.Namespace, n_pages: int) -> np.ndarray:
    """The page rows of ``--scope-share`` of the documents (at least one), chosen at random:
    what ``ask --doc``/``--tag`` searches within."""
    per_doc = max(1, args.pages_per_doc)
    n_docs = -(-n_pages // per_doc)
    chosen = np.random.default_rng([args.seed, 7]).choice(
        n_docs, max(1, round(args.scope_share * n_docs)), replace=False
    )
    spans = [np.arange(d * per_doc, min((d + 1) * per_doc, n_pages)) for d in sorted(chosen)]
    return np.concatenate(spans)


def _spans(rows: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive page rows as (first, last + 1)."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(rows, breaks)]


def _flat_scores(query: torch.Tensor, store: PageStore, first: int, last: int) -> torch.Tensor:
    """Exact MaxSim of pages ``first``..``last - 1``, stored one after another, without a
    layout: ``maxsim_flat``, as LocalIndex scores a small scope."""
    start = int(store.offsets[first])
    vectors = store._rows(start, int(store.offsets[last]))
    return maxsim_flat([query], vectors, store.offsets[first : last + 1] - start)


def run_scoped(
    args: argparse.Namespace, built: Built, exact16: PackedPages, binary: BinaryPages
) -> list[Scoped]:
    """Exact and binary+rerank search unscoped and within a scope of ``--scope-share`` of
    the documents, timed in the same run; top-10 against exact fp32 MaxSim within the scope."""
    k, bf16 = args.k, built.bf16
    rows = scope_rows(args, exact16.n_pages)
    selected = torch.from_numpy(rows)
    truth = [rows[top_rows(scores[rows], k)] for scores in built.truth]

    spans = _spans(rows)

    def exact(q, within=None):
        if within is None:
            return top_rows(maxsim_packed(q, exact16), k)
        if len(rows) <= args.rerank:  # as the index does: straight from the stored vectors
            scores = torch.cat([_flat_scores(q, bf16, first, last) for first, last in spans], 1)
            return rows[top_rows(scores[0], k)]
        return rows[top_rows(maxsim_packed(q, exact16.select(within)), k)]

    def binary_rerank(q, within=None):
        if within is not None and len(within) <= args.rerank:  # every scope page reranked:
            return exact(q, within)  # the index scores them exactly at once
        chosen = binary.top(binarize(q), args.rerank, args.prefilter, within)[0]
        return rerank(q, chosen, bf16, k)

    results = []
    for mode, search in (("exact-bf16", exact), ("binary-prefilter+rerank", binary_rerank)):
        everything, _ = time_queries(search, built.queries, args.repeats)
        within = selected if mode == "exact-bf16" else rows  # what each search takes
        scoped, found = time_queries(
            lambda q, search=search, within=within: search(q, within), built.queries, args.repeats
        )
        agreement = statistics.mean(overlap(f, t) for f, t in zip(found, truth, strict=True))
        outside = any(not set(f.tolist()) <= set(rows.tolist()) for f in found)
        results.append(
            Scoped(mode, exact16.n_pages, len(rows), statistics.median(everything),
                   statistics.median(scoped), agreement, outside)
        )  # fmt: skip
    return results


def _matmul_only(query: torch.Tensor, packed: PackedPages) -> None:
    """The similarity matmuls of ``maxsim_packed`` over the same chunks, and nothing else."""
    query = query.to(torch.bfloat16)
    for bucket in packed.buckets:
        n, length, dim = bucket.vectors.shape
        step = max(1, CHUNK_ELEMENTS // (query.shape[0] * length))
        for start in range(0, n, step):
            query @ bucket.vectors[start : start + step].reshape(-1, dim).T


def compute_bound(gflops: float, query_tokens: int, page_tokens: float) -> float:
    """Pages/s at ``gflops`` for one query: 2 x query tokens x page tokens x dim FLOPs a page,
    the multiply-adds no exact MaxSim can skip."""
    return gflops * 1e9 / (2 * query_tokens * page_tokens * DIM)


def _read_only(packed: PackedPages) -> None:
    """Read every vector of the layout once, which exact search cannot avoid."""
    for bucket in packed.buckets:
        bucket.vectors.sum()


def _measure_cuda(measure, packed: PackedPages, k: int) -> None:
    try:
        buckets = tuple(Bucket(b.rows.to("cuda"), b.vectors.to("cuda")) for b in packed.buckets)
        on_gpu = PackedPages(buckets, packed.n_pages)
    except torch.cuda.OutOfMemoryError:
        return

    def search(query: torch.Tensor, chunk: int | None = None) -> np.ndarray:
        scores = maxsim_packed_many([query], on_gpu, chunk)[0]
        return top_rows(scores.cpu(), k)  # .cpu() waits for the GPU

    bytes_per_page = _packed_bytes(packed)
    measure(CUDA_MODE, search, packed.n_pages, bytes_per_page, "GPU memory, bf16")
    measure(
        f"{CUDA_MODE}, CPU-sized chunks",
        partial(search, chunk=CHUNK_ELEMENTS),
        packed.n_pages,
        bytes_per_page,
        "as above, in the CPU's chunks: what the GPU's larger chunks save",
    )


def _mean_bytes(pages: list[torch.Tensor]) -> float:
    return sum(p.nelement() * p.element_size() for p in pages) / max(len(pages), 1)


def _packed_bytes(packed: PackedPages) -> float:
    return packed.nbytes / max(packed.n_pages, 1)


def report(result: Result) -> str:
    """The modes' table, under a header with the machine and the arguments."""
    args, corpus = result.args, result.corpus
    reference = result.row("reference").pages_per_s
    exact = result.row("exact-bf16").pages_per_s
    command = (
        f"python -m benchmarks.search --pages {args.pages} --shape {args.shape} "
        f"--queries {args.queries} --pages-per-doc {args.pages_per_doc}"
    )
    command += f" --out {args.out}" if args.out else ""
    low, high = SHAPES[args.shape]
    lines = header(
        f"Search benchmark: {args.pages:,} synthetic {args.shape} pages",
        f"command: `{command}` (k={args.k}, rerank={args.rerank}, "
        f"prefilter={args.prefilter}, seed={args.seed}, max RAM {args.max_ram_gb:g} GB)",
        f"machine: {result.machine}",
        f"pages: {low}-{high} x {DIM} tokens per page, {corpus['tokens']:,} tokens; documents of "
        f"{corpus['pages_per_doc']} pages, each with {corpus['doc_topics']} of "
        f"{corpus['n_centroids']} shared centroids, {corpus['topics_per_page']} per page, "
        f"{corpus['background_share']:.0%} background tokens; {args.queries} queries of "
        f"{args.query_tokens} tokens from random target pages; built in {result.seconds:.0f} s",
        f"pooling: HierarchicalTokenPooler algorithm, factor {args.pool_factor} "
        f"(rag.index.pooling.pool_page, {result.pool_note})",
        f"pages/s: median over queries (each the fastest of {args.repeats} runs) after a "
        "warm-up query; x: ratios of pages/s in this run; top-10 overlap: mean overlap with "
        "exact fp32 MaxSim (vs exact-bf16: with our exact bf16 search, same pages only)",
    )
    columns = (
        "mode", "pages/s", "x reference", "x exact-bf16", "bytes/page in RAM", "top-10 overlap",
        "vs exact-bf16", "notes",
    )  # fmt: skip
    cells = [
        (
            row.mode,
            f"{row.pages_per_s:,.0f}",
            f"{row.pages_per_s / reference:.1f}",
            f"{row.pages_per_s / exact:.2f}",
            f"{row.bytes_per_page:,.0f}",
            _share(row.overlap),
            _share(row.vs_exact),
            row.note,
        )
        for row in result.rows
    ]
    lines += ["", *table(cells, columns, "lrrrrrrl")]
    return "\n".join(lines + scoped_table(result.scoped)) + "\n"


def scoped_table(scoped: list[Scoped]) -> list[str]:
    """The scoped-search rows: the same queries over every page and within a scope."""
    if not scoped:
        return []
    first = scoped[0]
    columns = (
        "mode", "ms, every page", "ms, within the scope", "x faster", "top-10 overlap in scope",
        "results outside the scope",
    )  # fmt: skip
    cells = [
        (
            row.mode,
            f"{row.unscoped_s * 1e3:.1f}",
            f"{row.scoped_s * 1e3:.2f}",
            f"{row.unscoped_s / row.scoped_s:.0f}",
            f"{row.overlap:.3f}",
            "yes" if row.outside else "none",
        )
        for row in scoped
    ]
    return [
        "",
        f"Search within documents: {first.scope_pages:,} of {first.pages:,} pages in scope "
        f"({first.scope_pages / first.pages:.1%}; whole documents chosen at random), the same "
        "queries; ms: median per query, each the fastest of its repeats.",
        "",
        *table(cells, columns, "lrrrrr"),
    ]


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


if __name__ == "__main__":
    main()
