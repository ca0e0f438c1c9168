"""The kinds of file the app indexes, told apart by extension and checked by content.

Every kind becomes a PDF before indexing (``rag.ingest.convert``): a PDF as it is, images through
Pillow (``rag.ingest.imaging``), office files through LibreOffice (``rag.ingest.office``). A file's
extension says what it claims to be; its first bytes must agree (a ``.docx`` that is HTML, or random
bytes, is refused before any converter sees it: LibreOffice would otherwise guess a format
from the content, and an HTML page can ask for remote images).
"""

from __future__ import annotations

from pathlib import Path

PDF = ".pdf"
IMAGES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif")
# OOXML and ODF are zip packages; the older binary formats are OLE compound files.
ZIPPED = (".docx", ".docm", ".pptx", ".xlsx", ".odt", ".odp", ".ods")
COMPOUND = (".doc", ".ppt", ".xls")
OFFICE = (*ZIPPED, *COMPOUND, ".rtf")
SUPPORTED = (PDF, *IMAGES, *OFFICE)
# A presentation's pages are slides, and a workbook's are its sheets when each sheet prints on
# one page: citations say so.
SLIDES = (".pptx", ".ppt", ".odp")
SHEETS = (".xlsx", ".xls", ".ods")
# What each type's content starts with (RTF: "{\rtf"; zip: "PK\x03\x04"; OLE: its magic).
_ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGE_MAGIC = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".tif": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    ".tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    ".bmp": (b"BM",),
    ".gif": (b"GIF87a", b"GIF89a"),
}
KIND_NAMES = {
    ".docx": "a Word document",
    ".docm": "a Word document",
    ".doc": "a Word document",
    ".pptx": "a PowerPoint presentation",
    ".ppt": "a PowerPoint presentation",
    ".xlsx": "an Excel workbook",
    ".xls": "an Excel workbook",
    ".odt": "an OpenDocument text",
    ".odp": "an OpenDocument presentation",
    ".ods": "an OpenDocument spreadsheet",
    ".rtf": "an RTF document",
}


def suffix(name: str | Path) -> str:
    """The lower-case extension of a file name (``REPORT.PDF`` -> ``.pdf``)."""
    return Path(name).suffix.lower()


def kind(name: str | Path) -> str:
    """``pdf``, ``image``, ``office`` or ``unknown``, by extension.

    >>> kind("Deck.PPTX"), kind("scan.tiff"), kind("report.pdf"), kind("notes.txt")
    ('office', 'image', 'pdf', 'unknown')
    """
    ending = suffix(name)
    if ending == PDF:
        return "pdf"
    if ending in IMAGES:
        return "image"
    return "office" if ending in OFFICE else "unknown"


def content_matches(path: Path, ending: str) -> bool:
    """Whether ``path``'s first bytes are what a file ending in ``ending`` holds."""
    with Path(path).open("rb") as handle:
        head = handle.read(16)
    if ending in ZIPPED:
        return head.startswith(_ZIP_MAGIC)
    if ending in COMPOUND:
        return head.startswith(OLE_MAGIC)
    if ending == ".rtf":
        return head.startswith(b"{\\rtf")
    if ending == ".webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return head.startswith(_IMAGE_MAGIC.get(ending, (b"",)))


def described(types: str) -> tuple[str, ...]:
    """``--types`` (``pdf,docx,png``; a leading dot optional) as extensions; ValueError names
    an unknown one.

    >>> described("pdf, .DOCX,jpg")
    ('.pdf', '.docx', '.jpg')
    """
    endings = tuple("." + t.strip().lower().lstrip(".") for t in types.split(",") if t.strip())
    unknown = [e for e in endings if e not in SUPPORTED]
    if unknown:
        raise ValueError(f"unsupported type {unknown[0][1:]!r} (supported: {supported_list()})")
    return endings


def supported_list() -> str:
    """The supported extensions, for messages: ``pdf, png, jpg, ...``."""
    return ", ".join(e[1:] for e in SUPPORTED)
