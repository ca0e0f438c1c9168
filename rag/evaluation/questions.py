"""A questions file (JSON Lines) read into questions, and each question's key resolved against
the documents of the index.

One JSON object per line (docs/evaluation.md has the full schema)::

    {"question": "Who supplies part XK-4471-B?",
     "pages": [{"document": "facts.pdf", "page": 2, "grade": 2}],
     "documents": ["facts.pdf"],
     "answer": "Quintero Hermanos",
     "boxes": [{"document": "facts.pdf", "page": 2, "box": [0.08, 0.1, 0.5, 0.2]}],
     "id": "q2"}

``question`` is required; ``pages`` (1-based page numbers, an optional ``grade`` of 1-3,
default 1) or else ``documents`` is the key that retrieval is scored against; ``answer`` (a
string, or a list of acceptable answers) the reference for the answer metrics; ``boxes``
(page-relative x0, y0, x1, y1 in 0-1) the reference regions for the evidence-box overlap.
A document is named by its id or its exact name. Blank lines and lines starting with ``#``
are skipped. A bad line is one line of ``problems``, the rest are read.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.index.records import Document

GRADES = range(0, 4)  # 0 (not relevant) to 3


class DatasetError(RagError):
    """A questions file or a dataset folder that cannot be evaluated at all."""


@dataclass(frozen=True)
class PageRef:
    """A page of the key: ``document`` (an id or a name as written), 1-based ``page``."""

    document: str
    page: int
    grade: int = 1


@dataclass(frozen=True)
class BoxRef:
    """A reference region: page-relative (x0, y0, x1, y1), each in 0-1."""

    document: str
    page: int
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Question:
    """One line of a questions file. ``where``: the file and line, for messages."""

    where: str
    text: str
    pages: tuple[PageRef, ...] = ()
    documents: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    boxes: tuple[BoxRef, ...] = ()
    id: str | None = None


@dataclass(frozen=True)
class Keyed:
    """A question whose key names indexed documents: ``key`` maps each relevant unit (a
    (doc_id, page_number) pair, or a doc_id when only ``documents`` were given) to its grade;
    ``boxes`` maps pages (doc_id, page_number) to their reference boxes."""

    question: Question
    key: dict[Hashable, int] = field(default_factory=dict)
    level: str = "page"  # "page" or "document": what the ranking is made of
    boxes: dict[tuple[str, int], list[tuple[float, ...]]] = field(default_factory=dict)


def read_questions(path: Path) -> tuple[list[Question], list[str]]:
    """The questions of a JSON Lines file, and one line per line that could not be read.
    DatasetError when the file is missing or holds no line at all."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot be read ({error.__class__.__name__})") from None
    questions, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{Path(path).name} line {number}"
        try:
            questions.append(parse_question(line, where))
        except ValueError as error:
            problems.append(f"{where}: {error}; skipped")
    if not questions and not problems:
        raise DatasetError(f"{path}: no questions (the file is empty)")
    return questions, problems


def parse_question(line: str, where: str) -> Question:
    """One line as a Question; ValueError saying what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg}, column {error.colno})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    text = record.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('no "question" (a non-empty string)')
    answers = record.get("answer")
    answers = [answers] if isinstance(answers, str) else answers or []
    if not all(isinstance(a, str) for a in answers):
        raise ValueError('"answer" is neither a string nor a list of strings')
    documents = record.get("documents") or []
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise ValueError('"documents" is not a list of names or ids')
    pages = tuple(_page(entry) for entry in _list(record, "pages"))
    boxes = tuple(_box(entry) for entry in _list(record, "boxes"))
    ident = record.get("id")
    return Question(
        where, text.strip(), pages, tuple(documents), tuple(answers), boxes,
        None if ident is None else str(ident),
    )  # fmt: skip


def _list(record: dict, name: str) -> list:
    value = record.get(name) or []
    if not isinstance(value, list):
        raise ValueError(f'"{name}" is not a list')
    return value


def _page(entry: object) -> PageRef:
    if not isinstance(entry, dict) or not isinstance(entry.get("document"), str):
        raise ValueError('a page is not {"document": NAME_OR_ID, "page": N}')
    page, grade = entry.get("page"), entry.get("grade", 1)
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise ValueError(f"page {page!r} of {entry['document']} is not a page number (1, 2, ...)")
    if not isinstance(grade, int) or grade not in GRADES:
        raise ValueError(f"grade {grade!r} is not 0, 1, 2 or 3")
    return PageRef(entry["document"], page, grade)


def _box(entry: object) -> BoxRef:
    box = entry.get("box") if isinstance(entry, dict) else None
    if (
        not isinstance(box, list)
        or len(box) != 4
        or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in box)
    ):
        raise ValueError('a box is not {"document", "page", "box": [x0, y0, x1, y1] in 0-1}')
    page = _page({"document": entry.get("document"), "page": entry.get("page")})
    return BoxRef(page.document, page.page, tuple(float(v) for v in box))


def resolve(questions: Iterable[Question], named: Documents) -> tuple[list[Keyed], list[str]]:
    """Each question with its key naming indexed documents (by id or exact name), and one line
    per question whose key names a document that is not indexed or a page it does not have
    (that question is skipped: a wrong key would score it wrongly)."""
    keyed, problems = [], []
    for question in questions:
        try:
            keyed.append(key_of(question, named))
        except ValueError as error:
            problems.append(f"{question.where}: {error}; skipped")
    return keyed, problems


class Documents:
    """The indexed documents, found by id or exact name."""

    def __init__(self, documents: list[Document]) -> None:
        self.by_id = {d.doc_id: d for d in documents}
        self.by_name: dict[str, list[Document]] = {}
        for document in documents:
            self.by_name.setdefault(document.name, []).append(document)

    def find(self, ref: str) -> Document:
        if ref in self.by_id:
            return self.by_id[ref]
        found = self.by_name.get(ref, [])
        if len(found) > 1:
            raise ValueError(f"{len(found)} documents are named {ref!r}: name it by its id")
        if not found:
            raise ValueError(f"no document {ref!r} is indexed (app.py list shows those that are)")
        return found[0]

    def page(self, ref: str, page: int) -> tuple[str, int]:
        document = self.find(ref)
        if page > document.pages:
            raise ValueError(f"{document.name} has {document.pages} pages: there is no page {page}")
        return document.doc_id, page


def key_of(question: Question, named: Documents) -> Keyed:
    """``question``'s key in units of the index; ValueError naming the first bad reference."""
    documents = [named.find(ref).doc_id for ref in question.documents]
    boxes: dict[tuple[str, int], list[tuple[float, ...]]] = {}
    for box in question.boxes:
        boxes.setdefault(named.page(box.document, box.page), []).append(box.box)
    if question.pages:
        key: dict[Hashable, int] = {}
        for ref in question.pages:
            unit = named.page(ref.document, ref.page)
            key[unit] = max(key.get(unit, 0), ref.grade)
        return Keyed(question, key, "page", boxes)
    if documents:
        return Keyed(question, dict.fromkeys(documents, 1), "document", boxes)
    if not question.answers:
        raise ValueError("no pages, documents or answer to score against")
    return Keyed(question, {}, "page", boxes)
