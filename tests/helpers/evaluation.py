"""Inputs for the evaluation tests: a questions file over the generated corpus (each question
asking its own page's fact), and a tiny folder in ViDoRe V3's layout (JSON Lines export).

    python -m tests.helpers.evaluation OUT_DIR    writes facts.pdf and questions.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tests.helpers import corpus

# The reference answer of each of corpus.QUESTIONS, in order.
ANSWERS = [
    "4,812.50 EUR",
    "Quintero Hermanos",
    "Tomasz Wierzbicki",
    "Oduya Logistics",
    "2029",
    "275,000 EUR",
]


def question_lines(name: str = "facts.pdf") -> list[str]:
    """One JSON line per corpus question: its page of ``name``, its reference answer."""
    return [
        json.dumps(
            {
                "id": f"q{number}",
                "question": question,
                "pages": [{"document": name, "page": page}],
                "answer": answer,
            }
        )
        for number, ((question, page), answer) in enumerate(
            zip(corpus.QUESTIONS, ANSWERS, strict=True), start=1
        )
    ]


def write_questions(path: Path, lines: list[str] | None = None) -> Path:
    path.write_text("\n".join(question_lines() if lines is None else lines) + "\n")
    return path


# (doc_id, lines of each page): two source documents, pages drawn as pictures of text.
VIDORE_DOCS = [
    ("handbook", [["Leave policy", "Annual leave 31 days"], ["Pension plan", "Employer adds 6%"]]),
    ("survey", [["Survey of workers", "Response rate 47%"]]),
]
# (query_id, text, language, answer, {corpus_id: grade})
VIDORE_QUERIES = [
    (0, "How many days of annual leave?", "english", "31 days", {0: 2}),
    (1, "What does the employer add to the pension?", "english", "6%", {1: 2, 0: 1}),
    (2, "What was the response rate of the survey?", "english", "47%", {2: 2}),
    (3, "Combien de jours de congé annuel ?", "french", "31 jours", {0: 2}),
    (4, "A query without relevant pages", "english", "", {}),
]
PAGE_SIZE = (400, 560)


def write_vidore(folder: Path) -> Path:
    """A ViDoRe-layout folder (corpus.jsonl, queries.jsonl, qrels.jsonl, images/): three
    pages of two documents, five queries (one French, one without qrels), graded qrels with
    boxes in pixels."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    font = ImageFont.load_default(size=28)
    corpus_rows, corpus_id = [], 0
    for doc_id, pages in VIDORE_DOCS:
        for number, lines in enumerate(pages):
            image = Image.new("RGB", PAGE_SIZE, "white")
            draw = ImageDraw.Draw(image)
            for row, line in enumerate(lines):
                draw.text((30, 40 + row * 50), line, fill="black", font=font)
            path = f"images/{corpus_id}.png"
            image.save(folder / path)
            row = {"corpus_id": corpus_id, "image": path, "doc_id": doc_id}
            corpus_rows.append(row | {"page_number_in_doc": number, "markdown": " ".join(lines)})
            corpus_id += 1
    queries, qrels = [], []
    for query_id, text, language, answer, grades in VIDORE_QUERIES:
        queries.append(
            {"query_id": query_id, "query": text, "language": language, "answer": answer}
        )
        for page, grade in grades.items():
            box = {"annotator": 0, "x1": 20, "y1": 30, "x2": 380, "y2": 90}
            qrels.append({"query_id": query_id, "corpus_id": page, "score": grade})
            qrels[-1]["bounding_boxes"] = [box]
    for name, rows in (("corpus", corpus_rows), ("queries", queries), ("qrels", qrels)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def write_vidore_parquet(folder: Path) -> Path:
    """``write_vidore``'s dataset as Hugging Face publishes ViDoRe V3: a folder per table of
    parquet files (``corpus/test-00000-of-00001.parquet``, ...), each corpus page's image in
    the row itself as a {bytes, path} struct."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = write_vidore(folder / "plain")
    for name in ("corpus", "queries", "qrels"):
        rows = [json.loads(line) for line in (plain / f"{name}.jsonl").read_text().splitlines()]
        if name == "corpus":
            for row in rows:
                image = (plain / row["image"]).read_bytes()
                row["image"] = {"bytes": image, "path": f"{row['corpus_id']}.png"}
        (folder / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / name / "test-00000-of-00001.parquet")
    return folder


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "eval-example")
    out.mkdir(parents=True, exist_ok=True)
    print(corpus.write_facts(out / "facts.pdf"))
    print(write_questions(out / "questions.jsonl"))
