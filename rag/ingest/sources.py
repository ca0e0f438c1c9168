"""Which files of a folder are documents to index.

A file named on its own is always tried (its type decides how: ``rag.ingest.formats``). In a folder,
searched recursively in name order, a file is a document when its extension is a supported
one in any case (``REPORT.PDF``, ``deck.pptx``, ``scan.TIFF``) or when its first kilobyte holds
the ``%PDF-`` header (a PDF saved without an extension); ``types`` narrows that to some
extensions. Every other file is reported as ignored, never silently dropped. Hidden files and
folders (names starting with ``.``) are not searched, nor links to folders.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest.formats import SUPPORTED, suffix

PDF_SUFFIX = ".pdf"
HEADER = b"%PDF-"
HEADER_WINDOW = 1024  # where the PDF standard lets the header start


@dataclass(frozen=True)
class Found:
    """What a path holds: files to index, and (in folders) files of other types."""

    files: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def find_documents(path: Path, types: Collection[str] = SUPPORTED) -> Found:
    """``path`` itself if it is not a folder, else the documents under it whose extension is
    one of ``types`` and what was ignored."""
    path = Path(path)
    if not path.is_dir():
        return Found([path])
    found = Found()
    for file in _walk(path):
        wanted = suffix(file) in types or (PDF_SUFFIX in types and _pdf_header(file))
        (found.files if wanted else found.ignored).append(file)
    return found


def looks_like_pdf(file: Path) -> bool:
    """A ``.pdf`` extension in any case, or a PDF header in the first kilobyte."""
    return file.suffix.lower() == PDF_SUFFIX or _pdf_header(file)


def _pdf_header(file: Path) -> bool:
    try:
        with file.open("rb") as handle:
            return HEADER in handle.read(HEADER_WINDOW)
    except OSError:  # unreadable: reported as ignored
        return False


def _walk(folder: Path) -> Iterator[Path]:
    """Regular files under ``folder``, recursively, in name order, skipping hidden entries."""
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if not entry.is_symlink():  # a link back up the tree would never end
                yield from _walk(entry)
        elif entry.is_file():
            yield entry
