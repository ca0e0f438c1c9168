"""Binary mode's two knobs against each other: RAG_RERANK x RAG_BINARY_PREFILTER.

    python -m benchmarks.sweep --pages 100000 [--pages-per-doc 1] [--reranks 200,300,400,600]
                               [--prefilters 0,10,20] [--out benchmarks/results-sweep.md]

Builds the same synthetic pages as ``benchmarks.search`` (``--pages-per-doc 1``: unrelated
pages, the hard case for sign bits), then for every pair runs what LocalIndex does in binary
mode (``BinaryPages.top``, then an exact bf16 rerank, vectors memory-mapped from disk when they
do not fit ``--max-ram-gb``) and reports the top-10 overlap with exact fp32 MaxSim and the median
time per query.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import offline, publish, search
from rag.index.binary import PREFILTER_MAX_SHARE, BinaryPages, binarize, warmup


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__)
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--shape", choices=sorted(search.SHAPES), default="colqwen")
    parser.add_argument("--pages-per-doc", type=int, default=1)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--reranks", default="200,300,400,600")
    parser.add_argument("--prefilters", default="0,10,20")
    parser.add_argument("--max-ram-gb", type=float, default=16.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results-sweep.md"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
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
        rows = sweep(args, built)
    text = report(args, rows, built)
    return publish(text, args.out)


def sweep(args: argparse.Namespace, built: search.Built) -> list[tuple[int, int, float, float]]:
    """(rerank, prefilter, mean top-10 overlap, median ms) for every pair."""
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
            ms = 1000 * statistics.median(seconds)
            rows.append((rerank, prefilter, statistics.mean(overlaps), ms))
    return rows


def report(args: argparse.Namespace, rows: list, built: search.Built) -> str:
    n_pages = len(built.offsets) - 1
    lines = [
        f"# Rerank x prefilter sweep: {n_pages:,} synthetic {args.shape} pages, "
        f"{args.pages_per_doc} per document",
        "",
        f"- command: `python -m benchmarks.sweep --pages {args.pages} --pages-per-doc "
        f"{args.pages_per_doc} --reranks {args.reranks} --prefilters {args.prefilters}` "
        f"({args.queries} queries, seed {args.seed})",
        f"- machine: {search.machine()}",
        f"- vectors for the rerank: {'memory-mapped from disk' if built.bf16.on_disk else 'in RAM'}"
        "; ms: median per query, binary stage + exact bf16 rerank",
        "",
        "| RAG_RERANK | RAG_BINARY_PREFILTER | 64-bit pass | top-10 overlap | ms/query |",
        "|---:|---:|---|---:|---:|",
    ]
    for rerank, prefilter, overlap, ms in rows:
        keep = rerank * prefilter
        runs = prefilter > 0 and keep <= PREFILTER_MAX_SHARE * n_pages
        pass_note = f"keeps {keep:,}" if runs else "off"
        lines.append(f"| {rerank} | {prefilter} | {pass_note} | {overlap:.3f} | {ms:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
