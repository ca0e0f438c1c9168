"""Any supported file -> the PDF that is indexed (``rag.ingest.formats`` says which kinds).

A PDF is used as it is. Images (``rag.ingest.imaging``), office files (``rag.ingest.office``),
text files (``rag.ingest.markup``) and e-mails (``rag.ingest.mail``) are checked, then converted
within the file's budget, and the PDF is kept in ``<data-dir>/converted/`` under the document's
id (a hash of its bytes), with what the user should know of the conversion beside it (an
attachment left out, remote images not loaded), so indexing the same file again (after a
delete, or in another collection's folder) does not convert it again and says the same. The
cache holds at most ``CACHE_BYTES``; the least recently used conversions go first.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import UnsupportedFileError
from rag.ingest import imaging, mail, markup, office, sandbox
from rag.ingest.formats import format_of, kind, supported_summary
from rag.ingest.sources import looks_like_pdf

CACHE = "converted"
CACHE_BYTES = 2 * 2**30
NOTES = ".notes"  # beside a cached PDF: its conversion's notes, one per line


@dataclass(frozen=True)
class Converted:
    """The PDF to index, whether it was made from another kind of file (then its blank pages
    are what the file holds, not damage), and what the conversion left out."""

    pdf: Path
    converted: bool = False
    notes: tuple[str, ...] = ()


def as_pdf(
    sources: list[Path],
    name: str,
    doc_id: str,
    settings: Settings,
    budget: sandbox.Budget,
) -> Converted:
    """The PDF to index for ``sources`` (one file; several only for images made one
    document), shown as ``name``; raises a PdfError (one line) for a file that is refused."""
    first = sources[0]
    found = kind(name)
    found = kind(first) if found == "unknown" else found
    if len(sources) == 1 and (found == "pdf" or (found == "unknown" and looks_like_pdf(first))):
        return Converted(first)
    if found == "unknown":
        raise UnsupportedFileError(f"{name}: not a type this app reads ({supported_summary()})")
    folder = settings.data_dir / CACHE
    cached = folder / f"{doc_id}.pdf"
    if cached.is_file():
        os.utime(cached)  # recently used
        return Converted(cached, True, _read_notes(cached))
    _check(found, first, name, settings)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{doc_id}-{uuid.uuid4().hex}.part"  # not *.pdf: never pruned
    try:
        notes = _convert(found, sources, partial, name, budget=budget, settings=settings)
        _write_notes(cached, notes)
        os.replace(partial, cached)
    finally:
        partial.unlink(missing_ok=True)
    _prune(folder, keep=cached)
    return Converted(cached, True, notes)


def _check(found: str, source: Path, name: str, settings: Settings) -> None:
    """Refuse, before converting, a file whose content is not what its name says."""
    if found == "office":
        office.check(source, name)
    elif found == "text":
        markup.check(source, name, settings)
    elif found == "email":
        mail.check(source, name, settings)


def _convert(
    found: str, sources: list[Path], target: Path, name: str, *, budget, settings: Settings
) -> tuple[str, ...]:
    """Write ``sources`` as the PDF ``target``; what the user should know of it."""
    if found == "image":
        imaging.to_pdf(sources, target, name, budget, settings)
        return ()
    if found == "office":
        office.to_pdf(sources[0], target, name, budget)
        return ()
    if found == "email":
        return mail.to_pdf(sources[0], target, name, budget, settings, convert=convert_file)
    return markup.to_pdf(sources[0], target, name, budget, settings)


def convert_file(
    source: Path, target: Path, name: str, budget: sandbox.Budget, settings: Settings
) -> tuple[str, ...]:
    """Check ``source`` (an image, office or text file, by ``name``) and write it as the PDF
    ``target``: what an e-mail does with each attachment (``rag.ingest.mail``, which gets this
    function from here, since importing this module would make a circle). Raises a PdfError
    (one line) for a file that is refused; returns what the user should know of it."""
    found = kind(name)
    if found not in ("image", "office", "text"):
        raise UnsupportedFileError(f"{name}: not a type this app reads")
    _check(found, source, name, settings)
    return _convert(found, [source], target, name, budget=budget, settings=settings)


def _write_notes(cached: Path, notes: tuple[str, ...]) -> None:
    path = cached.with_suffix(NOTES)
    if notes:
        path.write_text("\n".join(notes) + "\n", encoding="utf-8")
    else:
        path.unlink(missing_ok=True)


def _read_notes(cached: Path) -> tuple[str, ...]:
    try:
        text = cached.with_suffix(NOTES).read_text(encoding="utf-8")
    except OSError:
        return ()
    return tuple(line for line in text.splitlines() if line)


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
            entry.with_suffix(NOTES).unlink(missing_ok=True)
            total -= size


def unit_of(name: str, pdf: Path, pages: int, budget: sandbox.Budget) -> str:
    """What the pages of the document ``name`` (made into ``pdf``, of ``pages`` pages) are
    called in citations: slides for a presentation; for a workbook, sheets when each sheet
    printed on one page (LibreOffice's outline says where each starts), else pages."""
    unit = format_of(name).unit if format_of(name) else "p."
    if unit == "sheet" and office.sheet_starts(pdf, budget) != list(range(1, pages + 1)):
        return "p."
    return unit
