"""Ingestion: a file (or several images made one document) -> a PDF, its page images, its words,
what its pages are called, and what the user should know about it.

The front door is ``prepare``: it refuses a bad file in one line (``PdfError``) before any model
loads, converting office files and images to PDF on the way (``convert``); the ``Prepared``
document it returns renders its pages (``pdf``), reads their words (``text``, ``ocr``) and
says what went wrong in rendering (``pdf.rendering_notes``). Every external tool runs under
the file's one budget of time and memory (``sandbox``). What a caller needs to walk folders
(``find_documents``, the ``SUPPORTED`` types) and to name a document (``display_name``) is
here too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.ingest.convert import as_pdf, unit_of
from rag.ingest.formats import SUPPORTED, kind
from rag.ingest.names import display_name
from rag.ingest.pdf import (
    PagePath,
    PdfInfo,
    RenderedPage,
    check_size,
    file_budget,
    inspect_pdf,
    render_pages,
    rendering_notes,
)
from rag.ingest.sources import find_documents
from rag.ingest.text import page_texts
from rag.words import PageText

__all__ = [
    "SUPPORTED",
    "Prepared",
    "RenderedPage",
    "check",
    "content_id",
    "display_name",
    "find_documents",
    "kind",
    "prepare",
]


@dataclass(frozen=True)
class Prepared:
    """A file that passed every check, as the PDF to index: ``info`` (page count, sizes, how
    to open it) and ``unit`` (``p.``, ``slide`` or ``sheet``: what citations call its pages)."""

    name: str
    pdf: Path
    info: PdfInfo
    unit: str
    settings: Settings
    converted: bool = False  # made from another kind of file: a blank page is what it holds
    remarks: tuple[str, ...] = ()  # what converting it left out (an attachment, remote images)

    @property
    def pages(self) -> int:
        return self.info.pages

    def render(self, folder: Path, page_path: PagePath) -> Iterator[RenderedPage]:
        """Render every page into ``folder`` at ``page_path(folder, number)``, in order, each
        as soon as it is on disk; a page that cannot be rendered raises a PdfError."""
        return render_pages(self.pdf, folder, self.settings, self.info, page_path=page_path)

    def words(self, images: dict[int, Path]) -> list[PageText]:
        """Every page's words: its text layer, else OCR of its rendered ``images[number]``,
        within the file's remaining budget; never refuses the file."""
        info = self.info
        return page_texts(
            self.pdf, info.pages, images, self.settings, info.budget, password=info.password
        )

    def notes(self, rendered: Sequence[RenderedPage]) -> tuple[str, ...]:
        """What the user should know of a file indexed from these pages: what converting it
        left out, its blank pages (damaged only when poppler complained), an XFA form."""
        blank = [page.page_number for page in rendered if page.blank]
        complaints = any(page.complaints for page in rendered)
        notes = rendering_notes(self.info, blank, complaints, converted=self.converted)
        return (*self.remarks, *notes)


def check(sources: Sequence[Path], settings: Settings, name: str) -> None:
    """Refuse, before reading any content, a source that is missing, empty or too large."""
    for source in sources:
        check_size(source, settings, name)


def content_id(sources: Sequence[Path]) -> str:
    """Documents are keyed by content: the same bytes under any name are one document (and
    the same images in the same order, made one document)."""
    digest = hashlib.sha256()
    for path in sources:
        if len(sources) > 1:
            digest.update(b"\x00file\x00")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def prepare(
    sources: Sequence[Path],
    name: str,
    doc_id: str,
    settings: Settings,
    password: str | None = None,
) -> Prepared:
    """``sources`` (one file; several images made one document ``name``) as a PDF that can be
    indexed, or a ``PdfError`` naming what is wrong. Converting (images, office files),
    inspecting, rendering and reading words share the file's one budget."""
    budget = file_budget(settings)
    made = as_pdf(list(sources), name, doc_id, settings, budget)
    info = inspect_pdf(made.pdf, settings, password=password, name=name, budget=budget)
    unit = unit_of(name, made.pdf, info.pages, info.budget)
    return Prepared(name, made.pdf, info, unit, settings, made.converted, made.notes)
