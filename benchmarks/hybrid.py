"""What the pages' words add to a search: hybrid (pictures + words, RRF) against pictures
alone, on the same index and queries, in one run.

    python -m benchmarks.hybrid [--pages 10000,100000] [--shape colqwen] [--dir /big/disk]
                                [--out FILE]

For each size a LocalIndex is built through the real ``LocalIndex.add`` (synthetic page vectors
from ``benchmarks.search.Corpus``, and ``text.json`` of synthetic words: ``--words`` per page
drawn from a Zipf-distributed vocabulary, as real text is), then opened in auto mode (binary +
exact rerank at these sizes) and warmed. Each query is a target page's vectors and eight of its
words; every search runs twice and the second is timed, pictures alone (``search``) and hybrid
(``rag.index.hybrid_search``, which also checks that the words' index is up to date, as every
search does). The build adds each document's words to the full-text index (tantivy) as the app
does (``index_words`` after each add): its time is in the build's. ``run`` measures (a ``Result``),
``report`` writes it as Markdown.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks import offline
from benchmarks.report import header, machine, parser, run_and_publish, table
from benchmarks.search import Corpus
from rag.index import hybrid_search
from rag.index.lexical import FOLDER
from rag.index.local import LocalIndex
from rag.index.records import Document
from rag.index.store import TEXT_FILE

RETRIEVER = "benchmark/synthetic"
VOCABULARY = 50_000
RESULTS = "results-hybrid.md"


@dataclass
class Result:
    args: argparse.Namespace
    machine: str
    sizes: list[dict]  # per size (``measure``): the search mode, ms per search, build, index size


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("hybrid", __doc__, RESULTS)
    arguments.add_argument("--pages", default="10000,100000", help="sizes, comma-separated")
    arguments.add_argument("--shape", choices=("colpali", "colqwen"), default="colqwen")
    arguments.add_argument("--pages-per-doc", type=int, default=20)
    arguments.add_argument("--words", type=int, default=300, help="words per page")
    arguments.add_argument("--queries", type=int, default=20)
    arguments.add_argument("--query-tokens", type=int, default=20)
    arguments.add_argument("--k", type=int, default=10)
    arguments.add_argument("--seed", type=int, default=0)
    arguments.add_argument("--dir", type=Path, help="where to build (default: a temporary folder)")
    return arguments.parse_args(argv)


def main(argv: list[str] | None = None) -> Result:
    return run_and_publish(argv, parse_args, run, report, RESULTS)


def run(args: argparse.Namespace) -> Result:
    """Build an index of each size and time the searches on it."""
    offline()
    rows = []
    for pages in (int(p) for p in args.pages.split(",")):
        folder = Path(tempfile.mkdtemp(prefix="hybrid-bench-", dir=args.dir))
        try:
            rows.append(measure(args, pages, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return Result(args, machine(), rows)


def words_of(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` words of a Zipf-distributed vocabulary ("w1" the commonest)."""
    ranks = np.minimum(rng.zipf(1.2, n), VOCABULARY)
    return [f"w{rank}" for rank in ranks]


def build(args: argparse.Namespace, pages: int, folder: Path) -> tuple[list, list, float]:
    corpus = Corpus(pages, args.shape, args.seed, args.pages_per_doc)
    rng = np.random.default_rng([args.seed, 7])
    targets = set(rng.choice(pages, args.queries, replace=False).tolist())
    image = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(image, format="PNG")
    blank = image.getvalue()
    index = LocalIndex(folder / "index", RETRIEVER, mode="auto")
    search = hybrid_search(index)
    queries, questions = [], []
    started = time.perf_counter()
    for first in range(0, pages, args.pages_per_doc):
        rows = range(first, min(first + args.pages_per_doc, pages))
        vectors = [torch.from_numpy(corpus.page(row)) for row in rows]
        document = Document(f"doc{first:08d}", f"doc{first:08d}.pdf", len(vectors), "2026-01-01")
        records = []
        for number, row in enumerate(rows, start=1):
            words = words_of(rng, args.words)
            records.append(
                {"page": number, "source": "layer", "words": [[w, 0, 0, 0, 0] for w in words]}
            )
            if row in targets:
                queries.append(corpus.query(row, args.query_tokens))
                questions.append(" ".join(rng.choice(words, 8, replace=False)))
        with index.staging() as staged:
            for number in range(1, len(vectors) + 1):
                index.page_path(staged, number).write_bytes(blank)
            (staged / TEXT_FILE).write_text(json.dumps({"pages": records}))
            index.add(document, staged, vectors)
        search.index_words()  # as the app does after each document
    search.close()
    index.close()
    return queries, questions, time.perf_counter() - started


def measure(args: argparse.Namespace, pages: int, folder: Path) -> dict:
    queries, questions, build_s = build(args, pages, folder)
    index = LocalIndex(folder / "index", RETRIEVER, mode="auto")
    search = hybrid_search(index)
    index.warm()
    started = time.perf_counter()
    search.search(queries[0], questions[0], args.k)
    first_s = time.perf_counter() - started
    timings: dict[str, list[float]] = {"pictures": [], "hybrid": [], "words": []}
    for query, question in zip(queries, questions, strict=True):
        for name, run in (
            ("pictures", lambda q=query: index.search(q, args.k)),
            ("hybrid", lambda q=query, t=question: search.search(q, t, args.k)),
            ("words", lambda t=question: search.lexical.search(t, args.k)),
        ):
            run()
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    ms = {name: 1000 * statistics.median(values) for name, values in timings.items()}
    words = folder / "index" / FOLDER
    return {
        "pages": pages,
        "mode": index.search_mode(),
        "build_s": build_s,
        "first_s": first_s,
        "words_mb": sum(f.stat().st_size for f in words.iterdir()) / 2**20,
        **ms,
    }


def report(result: Result) -> str:
    args = result.args
    lines = header(
        "Hybrid search: pictures + words (RRF) against pictures alone",
        f"command: `python -m benchmarks.hybrid --pages {args.pages} --shape {args.shape}` "
        f"(k={args.k}, {args.queries} queries of {args.query_tokens} tokens and 8 words, "
        f"{args.words} words a page, seed={args.seed})",
        f"machine: {result.machine}",
        "ms: median per query, the second of two runs (page cache warm)",
    )
    columns = (
        "pages", "picture search runs as", "pictures alone, ms", "hybrid, ms", "extra",
        "words alone, ms", "words' index", "first hybrid search, cold",
        "build (vectors and words)",
    )  # fmt: skip
    cells = [
        (
            f"{row['pages']:,}",
            row["mode"],
            f"{row['pictures']:.1f}",
            f"{row['hybrid']:.1f}",
            f"{row['hybrid'] / row['pictures'] - 1:+.0%}",
            f"{row['words']:.1f}",
            f"{row['words_mb']:.0f} MiB",
            f"{row['first_s']:.1f} s",
            f"{row['build_s']:.0f} s",
        )
        for row in result.sizes
    ]
    return "\n".join([*lines, "", *table(cells, columns, "rlrrrrrrr")]) + "\n"


if __name__ == "__main__":
    main()
