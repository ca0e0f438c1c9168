"""Which files of a folder are documents to index.

A file named on its own is always tried (poppler decides whether it is a PDF). In a folder,
searched recursively in name order, a file is a PDF when its extension is ``.pdf`` in any case
(``REPORT.PDF``) or when its first kilobyte holds the ``%PDF-`` header (a PDF saved without an
extension); every other file is reported as ignored, never silently dropped. Hidden files and
folders (names starting with ``.``) are not searched, nor links to folders.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PDF_SUFFIX = ".pdf"
HEADER = b"%PDF-"
HEADER_WINDOW = 1024  # where the PDF standard lets the header start


@dataclass(frozen=True)
class Found:
    """What a path holds: files to index, and (in folders) files that are not PDFs."""

    files: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def find_documents(path: Path) -> Found:
    """``path`` itself if it is not a folder, else the PDFs under it and what was ignored."""
    path = Path(path)
    if not path.is_dir():
        return Found([path])
    found = Found()
    for file in _walk(path):
        (found.files if looks_like_pdf(file) else found.ignored).append(file)
    return found


def looks_like_pdf(file: Path) -> bool:
    """A ``.pdf`` extension in any case, or a PDF header in the first kilobyte."""
    if file.suffix.lower() == PDF_SUFFIX:
        return True
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
