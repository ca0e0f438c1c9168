"""A large index end to end: build a binary-mode LocalIndex, reopen it in a fresh process, query.

    python -m benchmarks.scale --pages 100000 [--shape colqwen] [--dir /big/disk/folder]
                               [--out FILE]

Synthetic pages (``benchmarks.search.Corpus``) are added document by document through the real
``LocalIndex.add`` (crash-safe writes, bf16 vectors and sign bits on disk); exact fp32 MaxSim of
the queries against every page is computed on the way, as the ground truth. A second process
then opens the index as a server would (``warm()``: pages laid out, kernel compiled), times each
query (binary first stage + exact rerank from memory-mapped vectors) and reports its peak
resident memory. It then opens the same index in each search mode (auto, binary, and exact where
its layout fits in half the free memory) and times the same queries, and times them again
within a scope of ``--scope-share`` of the documents: how auto compares with the faster of
exact and binary, and what a scope saves, both measured in the same run. Needs about
``pages x tokens x 256`` bytes of disk (18 GB for 100k ColQwen
pages, 26 GB for ColPali ones); the folder is deleted afterwards unless ``--keep``. ``run``
measures (a ``Result``), ``report`` writes it as Markdown.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks import offline
from benchmarks.report import header, machine, parser, publish, table
from benchmarks.search import Corpus, overlap, top_rows
from rag.config import Settings
from rag.index.binary import PREFILTER, PREFILTER_MAX_SHARE, binarize
from rag.index.local import LocalIndex
from rag.index.records import Document
from rag.index.scoring import PackedPages, maxsim_packed_many

RETRIEVER = "benchmark/synthetic"
RESULTS = "results-scale.md"
MODES = ("auto", "binary", "exact")


@dataclass
class Result:
    """The build (``build``), the reopened index's timings (``serve``, with each search mode in
    ``served["modes"]``) and what the binary stage ran as."""

    args: argparse.Namespace
    machine: str
    built: dict
    served: dict
    stage: str  # what the binary stage runs at this size, e.g. "128-bit scan of every page"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("scale", __doc__, RESULTS)
    arguments.add_argument("--pages", type=int, default=100_000)
    arguments.add_argument("--shape", choices=("colpali", "colqwen"), default="colqwen")
    arguments.add_argument("--pages-per-doc", type=int, default=20)
    arguments.add_argument("--queries", type=int, default=20)
    arguments.add_argument("--query-tokens", type=int, default=20)
    arguments.add_argument("--rerank", type=int, default=200)
    arguments.add_argument("--prefilter", type=int, default=PREFILTER, help="0: no 64-bit pass")
    arguments.add_argument("--k", type=int, default=10)
    arguments.add_argument("--seed", type=int, default=0)
    arguments.add_argument("--dir", type=Path, help="index folder (default: a temporary folder)")
    arguments.add_argument("--keep", action="store_true", help="keep the index folder")
    arguments.add_argument(
        "--cold", action="store_true", help="drop the page cache before reopening (needs root)"
    )
    arguments.add_argument(
        "--scope-share", type=float, default=0.01, help="scoped: this share of docs"
    )
    arguments.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the reopening process
    return arguments.parse_args(argv)


def main(argv: list[str] | None = None) -> Result | None:
    args = parse_args(argv)
    offline()
    if args.serve:
        print(json.dumps(serve(args.serve, args)))
        return None
    result = run(args)
    publish(report(result), args.out, RESULTS)
    return result


def run(args: argparse.Namespace) -> Result:
    """Build the index, then reopen and query it in a fresh process."""
    folder = args.dir or Path(tempfile.mkdtemp(prefix="scale-bench-"))
    try:
        built = build(args, folder)
        if args.cold:
            drop_page_cache()
        command = [sys.executable, "-m", "benchmarks.scale", "--serve", str(folder)]
        reopened = subprocess.run(
            [
                *command,
                f"--rerank={args.rerank}",
                f"--k={args.k}",
                f"--prefilter={args.prefilter}",
                f"--scope-share={args.scope_share}",
                f"--pages-per-doc={args.pages_per_doc}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        served = json.loads(reopened.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return Result(args, machine(), built, served, _stage(args, served["pages"]))


def build(args: argparse.Namespace, folder: Path) -> dict:
    """Add every document through LocalIndex.add; save the queries and their exact truth."""
    corpus = Corpus(args.pages, args.shape, args.seed, args.pages_per_doc)
    rng = np.random.default_rng([args.seed, 3])
    targets = rng.choice(args.pages, args.queries, replace=args.queries > args.pages)
    queries = [corpus.query(int(t), args.query_tokens) for t in targets]
    truth = np.empty((len(queries), args.pages), np.float32)
    index = LocalIndex(folder / "index", RETRIEVER, mode="binary")
    folder.mkdir(parents=True, exist_ok=True)
    image = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(image, format="PNG")
    blank = image.getvalue()  # written per page: a file system caps hard links per file
    started = time.perf_counter()
    for first in range(0, args.pages, args.pages_per_doc):
        rows = range(first, min(first + args.pages_per_doc, args.pages))
        pages = [torch.from_numpy(corpus.page(row)) for row in rows]
        truth[:, rows.start : rows.stop] = maxsim_packed_many(
            queries, PackedPages.from_pages(pages)
        ).numpy()
        document = Document(f"doc{first:08d}", f"doc{first:08d}.pdf", len(pages), "2026-01-01")
        with index.staging() as staged:
            for number in range(1, len(pages) + 1):
                index.page_path(staged, number).write_bytes(blank)
            index.add(document, staged, pages)
    seconds = time.perf_counter() - started
    torch.save({"queries": queries, "truth": truth}, folder / "queries.pt")
    disk = sum(f.stat().st_size for f in (folder / "index").rglob("*.npy"))
    return {"seconds": seconds, "disk_bytes": disk, "rss_gb": _peak_rss_gb()}


def serve(folder: Path, args: argparse.Namespace) -> dict:
    """Reopen the index as a server does and time each query; runs in its own process."""
    saved = torch.load(folder / "queries.pt", weights_only=False)
    started = time.perf_counter()
    index = LocalIndex(
        folder / "index", RETRIEVER, mode="binary", rerank=args.rerank, prefilter=args.prefilter
    )
    n_pages = sum(document.pages for document in index.documents())
    opened = time.perf_counter() - started
    index.warm()
    warmed = time.perf_counter() - started - opened
    first_stage = index._searcher()[0].first_stage  # the binary stage alone, for the breakdown
    passes, overlaps, stages, scans = [], [], [], []
    for _ in range(2):  # first pass: as the cache is (--cold: from disk); second: page cache
        seconds = []
        for query, row_truth in zip(saved["queries"], saved["truth"], strict=True):
            start = time.perf_counter()
            hits = index.search(query, args.k)
            seconds.append(time.perf_counter() - start)
            found = np.array([int(hit.doc_id[3:]) + hit.page_number - 1 for hit in hits])
            overlaps.append(overlap(found, top_rows(row_truth, args.k)))
        passes.append(seconds)
    for query in saved["queries"]:
        start = time.perf_counter()
        first_stage([query], args.rerank, None)
        stages.append(time.perf_counter() - start)
        start = time.perf_counter()
        first_stage.pages.scores(binarize(query))
        scans.append(time.perf_counter() - start)
    return {
        "pages": n_pages,
        "open_s": opened,
        "warm_s": warmed,
        "ms": [1000 * s for s in passes[0]],
        "warm_ms": [1000 * s for s in passes[1]],
        "stage_ms": [1000 * s for s in stages],
        "scan_ms": [1000 * s for s in scans],
        "overlap": statistics.mean(overlaps),
        "rss_gb": _peak_rss_gb(),
        "modes": compare_modes(folder, args, saved, index.documents()),
    }


def compare_modes(folder: Path, args: argparse.Namespace, saved: dict, documents: list) -> dict:
    """Each search mode over the same index and queries (page cache warm), and auto within a
    scope of ``--scope-share`` of the documents: median ms and top-k overlap with exact fp32."""
    rng = np.random.default_rng([args.seed, 7])
    count = max(1, round(args.scope_share * len(documents)))
    chosen = [documents[i] for i in sorted(rng.choice(len(documents), count, replace=False))]
    scope = {d.doc_id for d in chosen}
    rows = np.concatenate([_first_row(d.doc_id) + np.arange(d.pages) for d in chosen])
    n_pages = sum(d.pages for d in documents)
    results = {"scope_pages": int(rows.shape[0])}
    for mode in MODES:
        if mode == "exact" and not _exact_fits(folder, n_pages):
            results[mode] = None
            continue
        index = LocalIndex(
            folder / "index", RETRIEVER, mode=mode, rerank=args.rerank, prefilter=args.prefilter
        )
        index.warm()
        results[mode] = _timed(index, saved, args.k)
        results[mode]["runs_as"] = index.search_mode()
        results[mode]["scoped"] = _timed(index, saved, args.k, scope, rows)
        del index
    return results


def _timed(index, saved: dict, k: int, scope=None, rows=None) -> dict:
    """Median ms of the queries (each run twice, the second timed: page cache warm) and the
    mean top-k overlap with exact fp32 MaxSim (within ``rows`` when scoped)."""
    seconds, overlaps = [], []
    for query, truth in zip(saved["queries"], saved["truth"], strict=True):
        index.search(query, k, scope)
        start = time.perf_counter()
        hits = index.search(query, k, scope)
        seconds.append(time.perf_counter() - start)
        found = np.array([_first_row(hit.doc_id) + hit.page_number - 1 for hit in hits])
        best = top_rows(truth, k) if rows is None else rows[top_rows(truth[rows], k)]
        overlaps.append(overlap(found, best))
    return {"ms": 1000 * statistics.median(seconds), "overlap": statistics.mean(overlaps)}


def _first_row(doc_id: str) -> int:
    return int(doc_id[3:])  # documents are named by their first page's row


def _exact_fits(folder: Path, n_pages: int) -> bool:
    """Whether an exact layout (every bf16 vector in RAM) takes at most half the free memory."""
    vectors = sum(f.stat().st_size for f in (folder / "index").rglob("vectors.npy"))
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return vectors * 1.1 <= available / 2 and n_pages > 0


def drop_page_cache() -> None:
    """Make the first queries read the vectors from the disk, as after a reboot."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3")
    except OSError as error:
        raise SystemExit(f"--cold: cannot drop the page cache ({error}); run as root") from None


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def report(result: Result) -> str:
    args, built, served = result.args, result.built, result.served
    ms = served["ms"]
    command = f"python -m benchmarks.scale --pages {args.pages} --shape {args.shape}"
    command += " --cold" if args.cold else ""
    first = "page cache dropped, vectors read from disk" if args.cold else "page cache as built"
    figures = [
        (
            f"build (LocalIndex.add, {args.pages_per_doc}-page documents)",
            f"{built['seconds']:,.0f} s, {args.pages / built['seconds']:,.0f} pages/s",
        ),
        ("on disk (bf16 vectors + sign bits)", f"{built['disk_bytes'] / 2**30:.1f} GiB"),
        ("peak RSS while building", f"{built['rss_gb']:.1f} GiB"),
        ("reopen in a fresh process", f"{served['open_s']:.1f} s"),
        ("warm (lay out pages, compile kernel)", f"{served['warm_s']:.1f} s"),
        (f"query, median (first pass: {first})", f"{statistics.median(ms):.0f} ms"),
        (f"query, slowest (first pass: {first})", f"{max(ms):.0f} ms"),
        (
            "query, median (same queries again: page cache)",
            f"{statistics.median(served['warm_ms']):.0f} ms",
        ),
        (
            f"binary stage alone ({result.stage}), median",
            f"{statistics.median(served['stage_ms']):.0f} ms",
        ),
        (
            "for comparison: 128-bit scan of every page, median",
            f"{statistics.median(served['scan_ms']):.0f} ms",
        ),
        (f"top-{args.k} overlap with exact fp32", f"{served['overlap']:.3f}"),
        ("peak RSS of the serving process", f"{served['rss_gb']:.1f} GiB"),
    ]
    lines = header(
        f"Scale benchmark: {served['pages']:,} synthetic {args.shape} pages, binary mode",
        f"command: `{command}` (k={args.k}, rerank={args.rerank}, prefilter={args.prefilter}, "
        f"{args.queries} queries of {args.query_tokens} tokens, seed={args.seed})",
        f"machine: {result.machine}",
    )
    lines += ["", *table(figures, ("step", "figure"), "lr"), ""]
    return "\n".join(lines + modes_table(args, served["modes"]))


def modes_table(args: argparse.Namespace, modes: dict) -> list[str]:
    """Each search mode on the same index and queries, over every page and within a scope."""
    timed = [modes[m]["ms"] for m in ("exact", "binary") if modes.get(m)]
    faster = min(timed)
    cells = []
    for mode in MODES:
        row = modes.get(mode)
        if row is None:
            cells.append((mode, *"------", "layout over half the free memory"))
            continue
        scoped = row["scoped"]
        cells.append(
            (
                mode,
                row["runs_as"],
                f"{row['ms']:.1f}",
                f"{row['ms'] / faster:.2f}",
                f"{row['overlap']:.3f}",
                f"{scoped['ms']:.2f}",
                f"{row['ms'] / scoped['ms']:.0f}",
                f"{scoped['overlap']:.3f}",
            )
        )
    columns = (
        "mode", "runs as", "ms", "x the faster of exact and binary", "top-10 overlap",
        "ms within the scope", "x faster within the scope", "top-10 overlap within the scope",
    )  # fmt: skip
    return [
        f"Search modes on this index (RAG_INDEX_MODE; auto switches to binary from "
        f"{Settings.auto_binary_pages:,} pages), the same {args.queries} queries, page cache "
        f"warm; ms: median per query. Within a scope: the same queries asked within "
        f"{modes['scope_pages']:,} pages ({args.scope_share:.0%} of the documents, chosen at "
        "random); its overlap is with exact fp32 MaxSim restricted to the scope.",
        "",
        *table(cells, columns, "llrrrrrr"),
        "",
    ]


def _stage(args: argparse.Namespace, n_pages: int) -> str:
    keep = args.prefilter * args.rerank
    if args.prefilter <= 0:
        return "128-bit scan of every page"
    if keep > PREFILTER_MAX_SHARE * n_pages:
        return "128-bit scan of every page: too few pages for the 64-bit pass"
    return f"64-bit pass over every page, 128 bits on its best {keep:,}"


if __name__ == "__main__":
    main()
