"""Which full-text engine holds the pages' words: SQLite's FTS5 (Python's standard library)
against tantivy, on the same pages and questions, in one run.

    python -m benchmarks.lexical [--pages 10000,100000] [--out FILE]

Pages are ``--words`` words drawn from a Zipf-distributed vocabulary (``benchmarks.hybrid``'s,
as real text is); each question is 8 words of one page, so most questions hold a few words
that are on a large share of the pages, as real questions do. Both engines are given the same
folded terms and return the top 50 pages by BM25 (the depth a hybrid search asks for); FTS5
runs as the app ran it before tantivy, once with every term and once without the terms on
over a fifth of the pages (the pruning it needed to be usable). Each query runs twice and the
second is timed. ``run`` measures (a ``Result``), ``report`` writes it as Markdown.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tantivy

from benchmarks.hybrid import words_of
from benchmarks.report import header, machine, parser, run_and_publish, table
from rag.index.lexical import schema

DEPTH = 50
COMMON_SHARE = 0.2  # FTS5 left out terms on more than this share of the pages
RESULTS = "results-lexical.md"


@dataclass
class Result:
    args: argparse.Namespace
    machine: str
    sizes: list[dict]  # per size (``measure``): ms per engine, build seconds, sizes on disk


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("lexical", __doc__, RESULTS)
    arguments.add_argument("--pages", default="10000,100000", help="sizes, comma-separated")
    arguments.add_argument("--words", type=int, default=300, help="words per page")
    arguments.add_argument("--queries", type=int, default=20)
    arguments.add_argument("--seed", type=int, default=0)
    return arguments.parse_args(argv)


def main(argv: list[str] | None = None) -> Result:
    return run_and_publish(argv, parse_args, run, report, RESULTS)


def run(args: argparse.Namespace) -> Result:
    """Both engines at each size, each in a fresh folder."""
    rows = []
    for pages in (int(p) for p in args.pages.split(",")):
        folder = Path(tempfile.mkdtemp(prefix="lexical-bench-"))
        try:
            rows.append(measure(args, pages, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return Result(args, machine(), rows)


def corpus(args: argparse.Namespace, pages: int) -> tuple[list[str], list[list[str]]]:
    rng = np.random.default_rng(args.seed)
    texts = [words_of(rng, args.words) for _ in range(pages)]
    targets = rng.choice(pages, args.queries, replace=False)
    questions = [list(dict.fromkeys(rng.choice(texts[t], 8, replace=False))) for t in targets]
    return [" ".join(text) for text in texts], questions


def tantivy_engine(texts: list[str], folder: Path) -> tuple[Callable, float]:
    fields = schema()
    index = tantivy.Index(fields, path=str(folder))
    started = time.perf_counter()
    writer = index.writer(heap_size=64 * 2**20, num_threads=1)
    for number, text in enumerate(texts):
        writer.add_document(tantivy.Document(text=text, doc_id=f"d{number // 20}", page=number))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    build = time.perf_counter() - started
    searcher = index.searcher()

    def search(terms: list[str]) -> list:
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(fields, "text", t)) for t in terms]
        )
        return [searcher.doc(address) for _, address in searcher.search(query, DEPTH).hits]

    return search, build


def fts5_engine(texts: list[str], folder: Path) -> tuple[Callable, Callable, float]:
    db = sqlite3.connect(folder / "fts5.sqlite")
    db.execute(
        "CREATE VIRTUAL TABLE pages USING fts5(text, doc_id UNINDEXED, page UNINDEXED, "
        "tokenize = 'unicode61 remove_diacritics 2')"
    )
    started = time.perf_counter()
    rows = ((text, f"d{number // 20}", number) for number, text in enumerate(texts))
    db.executemany("INSERT INTO pages VALUES (?, ?, ?)", rows)
    db.commit()
    build = time.perf_counter() - started
    share = Counter(term for text in texts for term in set(text.split()))

    def search(terms: list[str]) -> list:
        match = " OR ".join(f'"{term}"' for term in terms)
        sql = "SELECT doc_id, page FROM pages WHERE pages MATCH ? ORDER BY bm25(pages) LIMIT ?"
        return db.execute(sql, (match, DEPTH)).fetchall()

    def pruned(terms: list[str]) -> list:
        kept = [t for t in terms if share[t] <= COMMON_SHARE * len(texts)]
        return search(kept or [min(terms, key=share.__getitem__)])

    return search, pruned, build


def timed(search: Callable, questions: list[list[str]]) -> float:
    """Median ms per question, the second of two runs."""
    times = []
    for terms in questions:
        search(terms)
        started = time.perf_counter()
        search(terms)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(args: argparse.Namespace, pages: int, folder: Path) -> dict:
    texts, questions = corpus(args, pages)
    (folder / "tantivy").mkdir()
    tantivy_search, tantivy_build = tantivy_engine(texts, folder / "tantivy")
    fts5_search, fts5_pruned, fts5_build = fts5_engine(texts, folder)
    return {
        "pages": pages,
        "tantivy": timed(tantivy_search, questions),
        "fts5": timed(fts5_search, questions),
        "fts5_pruned": timed(fts5_pruned, questions),
        "tantivy_build": tantivy_build,
        "fts5_build": fts5_build,
        "tantivy_mb": sum(f.stat().st_size for f in (folder / "tantivy").iterdir()) / 2**20,
        "fts5_mb": (folder / "fts5.sqlite").stat().st_size / 2**20,
    }


def report(result: Result) -> str:
    args = result.args
    lines = header(
        "The pages' words: tantivy against SQLite FTS5",
        f"command: `python -m benchmarks.lexical --pages {args.pages}` ({args.queries} "
        f"questions of 8 words of one page, {args.words} Zipf-distributed words a page, top "
        f"{DEPTH} by BM25, seed={args.seed})",
        f"machine: {result.machine}",
        "ms: median per question, the second of two runs",
    )
    columns = (
        "pages", "tantivy, ms", "FTS5, every term, ms", "FTS5 without terms on >20% of pages, ms",
        "tantivy index", "FTS5 file", "tantivy build", "FTS5 build",
    )  # fmt: skip
    cells = [
        (
            f"{row['pages']:,}",
            f"{row['tantivy']:.2f}",
            f"{row['fts5']:.1f}",
            f"{row['fts5_pruned']:.1f}",
            f"{row['tantivy_mb']:.0f} MiB",
            f"{row['fts5_mb']:.0f} MiB",
            f"{row['tantivy_build']:.1f} s",
            f"{row['fts5_build']:.1f} s",
        )
        for row in result.sizes
    ]
    return "\n".join([*lines, "", *table(cells, columns, "rrrrrrrr")]) + "\n"


if __name__ == "__main__":
    main()
