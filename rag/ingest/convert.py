"""Any supported file -> the PDF that is indexed (``rag.ingest.formats`` says which kinds).

A PDF is used as it is. Images (``rag.ingest.imaging``) and office files (``rag.ingest.office``) are
converted, within the file's budget, and the PDF is kept in ``<data-dir>/converted/`` under
the document's id (a hash of its bytes), so indexing the same file again (after a delete, or in
another collection's folder) does not convert it again. The cache holds at most
``CACHE_BYTES``; the least recently used conversions go first.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from rag.config import Settings
from rag.errors import UnsupportedFileError
from rag.ingest import imaging, office, sandbox
from rag.ingest.formats import SHEETS, SLIDES, kind, suffix, supported_list
from rag.ingest.sources import looks_like_pdf

CACHE = "converted"
CACHE_BYTES = 2 * 2**30


def as_pdf(
    sources: list[Path],
    name: str,
    doc_id: str,
    settings: Settings,
    budget: sandbox.Budget,
) -> Path:
    """The PDF to index for ``sources`` (one file; several only for images made one
    document), shown as ``name``; raises a PdfError (one line) for a file that is refused."""
    first = sources[0]
    found = kind(name)
    found = kind(first) if found == "unknown" else found
    if len(sources) == 1 and (found == "pdf" or (found == "unknown" and looks_like_pdf(first))):
        return first
    if found == "unknown":
        raise UnsupportedFileError(f"{name}: not a type this app reads ({supported_list()})")
    folder = settings.data_dir / CACHE
    cached = folder / f"{doc_id}.pdf"
    if cached.is_file():
        os.utime(cached)  # recently used
        return cached
    if found == "office":
        office.check(first, name)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{doc_id}-{uuid.uuid4().hex}.part"  # not *.pdf: never pruned
    try:
        if found == "office":
            office.to_pdf(first, partial, name, budget)
        else:
            imaging.to_pdf(sources, partial, name, budget, settings)
        os.replace(partial, cached)
    finally:
        partial.unlink(missing_ok=True)
    _prune(folder, keep=cached)
    return cached


def _prune(folder: Path, keep: Path) -> None:
    """Remove the least recently used conversions while the cache is over CACHE_BYTES."""
    entries = []
    for entry in folder.glob("*.pdf"):
        with contextlib.suppress(FileNotFoundError):  # another process pruning too
            status = entry.stat()
            entries.append((status.st_mtime, status.st_size, entry))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries):
        if total <= CACHE_BYTES:
            break
        if entry != keep:
            entry.unlink(missing_ok=True)
            total -= size


def unit_of(name: str, pdf: Path, pages: int, budget: sandbox.Budget) -> str:
    """What the pages of the document ``name`` (made into ``pdf``, of ``pages`` pages) are
    called in citations: slides for a presentation; for a workbook, sheets when each sheet
    printed on one page (LibreOffice's outline says where each starts), else pages."""
    ending = suffix(name)
    if ending in SLIDES:
        return "slide"
    if ending in SHEETS and office.sheet_starts(pdf, budget) == list(range(1, pages + 1)):
        return "sheet"
    return "p."
