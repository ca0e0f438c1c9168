"""Binary mode's two knobs against each other: RAG_RERANK x RAG_BINARY_PREFILTER.

    python -m benchmarks.sweep --pages 100000 [--pages-per-doc 1] [--reranks 200,300,400,600]
                               [--prefilters 0,10,20] [--out FILE]

Builds the same synthetic pages as ``benchmarks.search`` (``--pages-per-doc 1``: unrelated
pages, the hard case for sign bits), then for every pair runs what LocalIndex does in binary
mode (``BinaryPages.top``, then an exact bf16 rerank, vectors memory-mapped from disk when they
do not fit ``--max-ram-gb``) and reports the top-10 overlap with exact fp32 MaxSim and the median
time per query. ``run`` measures (a ``Result``), ``report`` writes it as Markdown.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import offline, search
from benchmarks.report import header, machine, parser, run_and_publish, table
from rag.index.binary import PREFILTER_MAX_SHARE, BinaryPages, binarize, warmup

RESULTS = "results-sweep.md"


@dataclass
class Pair:
    """One (RAG_RERANK, RAG_BINARY_PREFILTER) pair, measured."""

    rerank: int
    prefilter: int
    keeps: int | None  # pages the 64-bit pass keeps (None: the pass is off)
    overlap: float  # mean top-10 overlap with exact fp32 MaxSim
    ms: float  # median per query, binary stage + exact bf16 rerank


@dataclass
class Result:
    args: argparse.Namespace
    machine: str
    pages: int
    on_disk: bool  # the rerank's vectors memory-mapped from disk (else in RAM)
    pairs: list[Pair]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("sweep", __doc__, RESULTS)
    arguments.add_argument("--pages", type=int, default=100_000)
    arguments.add_argument("--shape", choices=sorted(search.SHAPES), default="colqwen")
    arguments.add_argument("--pages-per-doc", type=int, default=1)
    arguments.add_argument("--queries", type=int, default=20)
    arguments.add_argument("--reranks", default="200,300,400,600")
    arguments.add_argument("--prefilters", default="0,10,20")
    arguments.add_argument("--max-ram-gb", type=float, default=16.0)
    arguments.add_argument("--seed", type=int, default=0)
    return arguments.parse_args(argv)


def main(argv: list[str] | None = None) -> Result:
    return run_and_publish(argv, parse_args, run, report, RESULTS)


def run(args: argparse.Namespace) -> Result:
    """Build the pages once, then measure every pair on them."""
    offline()
    warmup()
    setup = search.parse_args(
        [
            *("--pages", str(args.pages), "--shape", args.shape, "--seed", str(args.seed)),
            *("--queries", str(args.queries), "--pages-per-doc", str(args.pages_per_doc)),
            *("--max-ram-gb", str(args.max_ram_gb), "--pool-pages", "1", "--subset", "1"),
        ]
    )
    corpus = search.Corpus(args.pages, args.shape, args.seed, args.pages_per_doc)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as scratch:
        built = search.build(setup, corpus, Path(scratch))
        pairs = sweep(args, built)
        on_disk = built.bf16.on_disk
    return Result(args, machine(), len(built.offsets) - 1, on_disk, pairs)


def sweep(args: argparse.Namespace, built: search.Built) -> list[Pair]:
    """Every pair's top-10 overlap and median ms, on the same queries."""
    n_pages = len(built.offsets) - 1
    pages = BinaryPages.from_bits(built.bits, built.offsets)
    truths = [search.top_rows(row, 10) for row in built.truth]
    rows = []
    for rerank in (int(r) for r in args.reranks.split(",")):
        for prefilter in (int(p) for p in args.prefilters.split(",")):
            overlaps, seconds = [], []
            for query, truth in zip(built.queries, truths, strict=True):
                started = time.perf_counter()
                candidates = pages.top(binarize(query), rerank, prefilter)[0]
                found = search.rerank(query, candidates, built.bf16, 10)
                seconds.append(time.perf_counter() - started)
                overlaps.append(search.overlap(found, truth))
            keep = rerank * prefilter
            keeps = keep if prefilter > 0 and keep <= PREFILTER_MAX_SHARE * n_pages else None
            ms = 1000 * statistics.median(seconds)
            rows.append(Pair(rerank, prefilter, keeps, statistics.mean(overlaps), ms))
    return rows


def report(result: Result) -> str:
    args = result.args
    lines = header(
        f"Rerank x prefilter sweep: {result.pages:,} synthetic {args.shape} pages, "
        f"{args.pages_per_doc} per document",
        f"command: `python -m benchmarks.sweep --pages {args.pages} --pages-per-doc "
        f"{args.pages_per_doc} --reranks {args.reranks} --prefilters {args.prefilters}` "
        f"({args.queries} queries, seed {args.seed})",
        f"machine: {result.machine}",
        f"vectors for the rerank: {'memory-mapped from disk' if result.on_disk else 'in RAM'}"
        "; ms: median per query, binary stage + exact bf16 rerank",
    )
    cells = [
        (
            pair.rerank,
            pair.prefilter,
            "off" if pair.keeps is None else f"keeps {pair.keeps:,}",
            f"{pair.overlap:.3f}",
            f"{pair.ms:.0f}",
        )
        for pair in result.pairs
    ]
    columns = ("RAG_RERANK", "RAG_BINARY_PREFILTER", "64-bit pass", "top-10 overlap", "ms/query")
    return "\n".join([*lines, "", *table(cells, columns, "rrlrr")]) + "\n"


if __name__ == "__main__":
    main()
