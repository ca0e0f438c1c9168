"""A ViDoRe V3 dataset read from a local folder: its corpus of page images (indexed as the app
indexes images, a document per source document), its queries and graded qrels made into
questions, so that ``app.py eval --vidore FOLDER`` reproduces the benchmark's nDCG@10 offline.

The layout is the Hugging Face dataset's (``vidore/vidore_v3_hr`` and its siblings): three
tables, each a folder of parquet files as the Hub serves them, or one JSON Lines file each::

    FOLDER/corpus/test-*.parquet    corpus_id, image, doc_id, page_number_in_doc (0-based), markdown
    FOLDER/queries/test-*.parquet   query_id, query, language, answer, ...
    FOLDER/qrels/test-*.parquet     query_id, corpus_id, score (1 or 2), bounding_boxes
    (or FOLDER/corpus.jsonl, queries.jsonl, qrels.jsonl: the same columns, the corpus's
    ``image`` a path relative to FOLDER)

Parquet needs pyarrow; without it the JSON Lines export is read (docs/evaluation.md shows how
to write it). Each query is given in six languages, as rows of their own.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from rag.evaluation.questions import BoxRef, DatasetError, Documents, PageRef, Question
from rag.ingest.names import display_name
from rag.view.evidence import reference_boxes

TABLES = ("corpus", "queries", "qrels")
EXPECTED = (
    "corpus/, queries/ and qrels/ folders of parquet files (as the Hugging Face dataset "
    "downloads) or corpus.jsonl, queries.jsonl and qrels.jsonl (docs/evaluation.md)"
)


@dataclass(frozen=True)
class CorpusPage:
    corpus_id: str
    doc_id: str
    page_in_doc: int  # the dataset's page_number_in_doc: 0-based, gaps possible
    image: object  # a path, a {"bytes", "path"} record, or None


@dataclass
class Benchmark:
    """The dataset as read: pages by corpus id, queries, graded qrels and each qrel's boxes
    as released (``bounding_boxes``: image pixels)."""

    folder: Path
    pages: dict[str, CorpusPage]
    queries: dict[str, dict]
    qrels: dict[str, dict[str, int]]
    boxes: dict[tuple[str, str], list] = field(default_factory=dict)

    def documents(self) -> dict[str, list[CorpusPage]]:
        """The source documents' pages in page order, by document name in the app."""
        grouped: dict[str, list[CorpusPage]] = {}
        for page in self.pages.values():
            grouped.setdefault(display_name(page.doc_id), []).append(page)
        return {name: sorted(pages, key=lambda p: p.page_in_doc) for name, pages in grouped.items()}

    def placement(self) -> dict[str, tuple[str, int]]:
        """Each corpus id's document name and 1-based page number in the app (its place in
        the document's pages, so a document missing pages keeps its numbering dense)."""
        return {
            page.corpus_id: (name, number)
            for name, pages in self.documents().items()
            for number, page in enumerate(pages, start=1)
        }


def read_benchmark(folder: Path) -> Benchmark:
    """The dataset in ``folder``; DatasetError when it is not laid out as ViDoRe's."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder")
    rows = {name: list(read_table(folder, name)) for name in TABLES}
    pages = {}
    for row in rows["corpus"]:
        need(row, ("corpus_id", "doc_id", "page_number_in_doc"), "corpus")
        corpus_id = str(row["corpus_id"])
        pages[corpus_id] = CorpusPage(
            corpus_id, str(row["doc_id"]), int(row["page_number_in_doc"]), row.get("image")
        )
    queries = {}
    for row in rows["queries"]:
        need(row, ("query_id", "query"), "queries")
        queries[str(row["query_id"])] = row
    benchmark = Benchmark(folder, pages, queries, {})
    for row in rows["qrels"]:
        need(row, ("query_id", "corpus_id", "score"), "qrels")
        query, corpus_id = str(row["query_id"]), str(row["corpus_id"])
        benchmark.qrels.setdefault(query, {})[corpus_id] = int(row["score"])
        if row.get("bounding_boxes"):
            benchmark.boxes[(query, corpus_id)] = list(row["bounding_boxes"])
    if not pages:
        raise DatasetError(f"{folder}: the corpus has no pages")
    return benchmark


def need(row: dict, columns: tuple[str, ...], table: str) -> None:
    missing = [c for c in columns if c not in row]
    if missing:
        raise DatasetError(
            f"the {table} table has no {', '.join(missing)} column: expected {EXPECTED}"
        )


def read_table(folder: Path, name: str) -> Iterator[dict]:
    """The rows of one table: ``name``.jsonl, or the JSON Lines or parquet files of the folder
    ``name``/."""
    single = folder / f"{name}.jsonl"
    parts = sorted((folder / name).glob("*.jsonl")) if (folder / name).is_dir() else []
    parquet = sorted((folder / name).glob("*.parquet")) if (folder / name).is_dir() else []
    if single.is_file():
        parts = [single]
    if parts:
        for part in parts:
            yield from read_jsonl(part)
        return
    if parquet:
        yield from read_parquet(folder / name, parquet)
        return
    found = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"
    raise DatasetError(f"{folder}: no {name} table; expected {EXPECTED}; found {found}")


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise DatasetError(f"{path} line {number}: not JSON ({error.msg})") from None


def read_parquet(folder: Path, files: list[Path]) -> Iterator[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            f"{folder}: parquet files need pyarrow (pip install pyarrow), or export the "
            "dataset to JSON Lines (docs/evaluation.md)"
        ) from None
    for path in files:
        yield from pq.read_table(path).to_pylist()


def page_image(benchmark: Benchmark, page: CorpusPage) -> Image.Image:
    """A corpus page's image: a file under the folder, or the bytes parquet carries."""
    image = page.image
    if isinstance(image, dict) and image.get("bytes"):
        return Image.open(io.BytesIO(image["bytes"]))
    path = image.get("path") if isinstance(image, dict) else image
    if not isinstance(path, str) or not (benchmark.folder / path).is_file():
        raise DatasetError(f"corpus page {page.corpus_id}: no image ({path!r} is not a file)")
    return Image.open(benchmark.folder / path)


def index_corpus(
    pipeline, benchmark: Benchmark, said: Callable[[str], None] = lambda line: None
) -> None:
    """Index every source document of the corpus, its page images in page order, as one
    document (``Pipeline.add_images``); an indexed one is skipped. ``said`` hears one line
    per document."""
    with tempfile.TemporaryDirectory(prefix="vidore-") as scratch:
        for name, pages in benchmark.documents().items():
            paths = []
            for page in pages:
                path = Path(scratch) / f"{page.corpus_id}.png"
                with page_image(benchmark, page) as image:
                    image.convert("RGB").save(path)
                paths.append(path)
            result = pipeline.add_images(paths, name)
            said(result.message)
            for path in paths:
                path.unlink()


def questions(benchmark: Benchmark, language: str = "english") -> list[Question]:
    """The queries in ``language`` ("all": every language) that have qrels, each keyed by its
    graded pages, with its reference answer and its boxes (page-relative)."""
    placed = benchmark.placement()
    chosen = []
    for query_id, row in benchmark.queries.items():
        if language != "all" and row.get("language", language) != language:
            continue
        qrels = benchmark.qrels.get(query_id, {})
        pages = [
            PageRef(*placed[c], grade) for c, grade in qrels.items() if c in placed and grade > 0
        ]
        if not pages:
            continue  # no relevant page: not scored, as the benchmark leaves it out
        answer = row.get("answer")
        boxes = tuple(relative_boxes(benchmark, query_id, qrels, placed))
        chosen.append(
            Question(
                f"query {query_id}", str(row["query"]), tuple(pages), (),
                (answer,) if isinstance(answer, str) and answer else (), boxes, query_id,
            )
        )  # fmt: skip
    return chosen


def relative_boxes(
    benchmark: Benchmark, query_id: str, qrels: dict, placed: dict
) -> Iterator[BoxRef]:
    """The query's boxes, page-relative (only where the page image can be read for its size:
    a path, or the bytes parquet carries)."""
    for corpus_id in qrels:
        boxes = benchmark.boxes.get((query_id, corpus_id))
        if not boxes or corpus_id not in placed:
            continue
        try:
            with page_image(benchmark, benchmark.pages[corpus_id]) as image:
                width, height = image.size
        except DatasetError:
            continue
        # Page-relative, within the page; a few released boxes have no area: dropped.
        for box in reference_boxes({"bounding_boxes": boxes}, size=(width, height)):
            clamped = tuple(min(max(v, 0.0), 1.0) for v in box)
            if clamped[2] > clamped[0] and clamped[3] > clamped[1]:
                yield BoxRef(*placed[corpus_id], clamped)


def scope(benchmark: Benchmark, documents: Documents) -> list[str]:
    """The ids of the dataset's documents in the index: the search's scope, so that other
    documents of the data dir never compete. DatasetError when any is missing: a partial
    corpus is not the benchmark."""
    names = list(benchmark.documents())
    missing = [name for name in names if name not in documents.by_name]
    if missing:
        raise DatasetError(
            f"{len(missing)} of the {len(names)} documents of {benchmark.folder} are not indexed "
            f"(e.g. {missing[0]}): add --index-corpus"
        )
    return [documents.find(name).doc_id for name in names]


LEADERBOARD = (
    "Comparable with the ViDoRe V3 leaderboard's nDCG@10 in mode `off` (the retriever's "
    "MaxSim alone) with `--index-mode exact`: the same corpus (every page a unit, searched "
    "only among the dataset's documents), the qrels' grades (1, 2) as linear gains, cut at 10, "
    "averaged over the queries that have qrels, one language at a time."
)
