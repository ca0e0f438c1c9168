"""The kinds of file the app indexes, told apart by extension and checked by content.

``FORMATS`` is the one list: every other list of types (the upload box, ``--types``, folders,
the README's and docs/formats-and-limits.md's tables) is made from it. Each format names its
family, which decides how it becomes a PDF (``rag.ingest.convert``): a PDF as it is, images
through Pillow (``rag.ingest.imaging``), office files through LibreOffice (``rag.ingest.office``),
text files through an HTML page rendered offline (``rag.ingest.markup``, ``rag.ingest.webpage``)
and e-mails as their message page followed by their attachments (``rag.ingest.mail``).

A file's extension says what it claims to be; its first bytes must agree (a ``.docx`` that is
HTML, or random bytes, is refused before any converter sees it: LibreOffice would otherwise
guess a format from the content, and an HTML page can ask for remote images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# What each container starts with.
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PDF_MAGIC = b"%PDF-"
_IMAGE_MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    "bmp": (b"BM",),
    "gif": (b"GIF87a", b"GIF89a"),
}
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
HEAD = 4096  # bytes read to tell what a file holds


@dataclass(frozen=True)
class Format:
    """One extension the app reads: its family (how it becomes a PDF), what it is called in
    messages, what its content must start as (``container``), and what citations call its
    pages (``slide`` for decks; ``sheet`` for workbooks whose every sheet prints on one page)."""

    ending: str
    family: str  # pdf, image, office, text or email
    name: str  # "a Word template"
    container: str  # pdf, png, jpeg, ..., zip, ole, rtf, flat-xml, text
    unit: str = "p."
    group: str = "PDF"  # what people call its kind, in the lists of types: Word, images, ...


# fmt: off
# (group, family, container, name, citation unit, extensions)
_TABLE = (
    ("PDF", "pdf", "pdf", "a PDF", "p.", "pdf"),
    ("images", "image", "png", "a PNG image", "p.", "png"),
    ("images", "image", "jpeg", "a JPEG image", "p.", "jpg jpeg"),
    ("images", "image", "tiff", "a TIFF image", "p.", "tif tiff"),
    ("images", "image", "webp", "a WebP image", "p.", "webp"),
    ("images", "image", "bmp", "a BMP image", "p.", "bmp"),
    ("images", "image", "gif", "a GIF image", "p.", "gif"),
    # Word, Excel and PowerPoint: OOXML zip packages (.xlsb too: binary parts in a zip), and
    # the older binary formats in OLE compound files; documents, macro-enabled, templates, shows.
    ("Word", "office", "zip", "a Word document", "p.", "docx docm"),
    ("Word", "office", "zip", "a Word template", "p.", "dotx dotm"),
    ("Word", "office", "ole", "a Word document", "p.", "doc"),
    ("Word", "office", "ole", "a Word template", "p.", "dot"),
    ("Word", "office", "rtf", "an RTF document", "p.", "rtf"),
    ("Excel", "office", "zip", "an Excel workbook", "sheet", "xlsx xlsm xlsb"),
    ("Excel", "office", "zip", "an Excel template", "sheet", "xltx xltm"),
    ("Excel", "office", "ole", "an Excel workbook", "sheet", "xls"),
    ("Excel", "office", "ole", "an Excel template", "sheet", "xlt"),
    ("PowerPoint", "office", "zip", "a PowerPoint presentation", "slide", "pptx pptm"),
    ("PowerPoint", "office", "zip", "a PowerPoint slide show", "slide", "ppsx ppsm"),
    ("PowerPoint", "office", "zip", "a PowerPoint template", "slide", "potx potm"),
    ("PowerPoint", "office", "ole", "a PowerPoint presentation", "slide", "ppt"),
    ("PowerPoint", "office", "ole", "a PowerPoint slide show", "slide", "pps"),
    ("PowerPoint", "office", "ole", "a PowerPoint template", "slide", "pot"),
    # OpenDocument: zip packages, their templates, and the flat (single XML file) variants.
    ("OpenDocument", "office", "zip", "an OpenDocument text", "p.", "odt ott"),
    ("OpenDocument", "office", "zip", "an OpenDocument spreadsheet", "sheet", "ods ots"),
    ("OpenDocument", "office", "zip", "an OpenDocument presentation", "slide", "odp otp"),
    ("OpenDocument", "office", "zip", "an OpenDocument drawing", "p.", "odg otg"),
    ("OpenDocument", "office", "flat-xml", "a flat OpenDocument text", "p.", "fodt"),
    ("OpenDocument", "office", "flat-xml", "a flat OpenDocument spreadsheet", "sheet", "fods"),
    ("OpenDocument", "office", "flat-xml", "a flat OpenDocument presentation", "slide", "fodp"),
    ("OpenDocument", "office", "flat-xml", "a flat OpenDocument drawing", "p.", "fodg"),
    # Text, drawn as a person reads it; its words are the source's own.
    ("text", "text", "text", "a text file", "p.", "txt text log"),
    ("Markdown", "text", "text", "a Markdown file", "p.", "md markdown"),
    ("HTML", "text", "text", "an HTML page", "p.", "html htm xhtml"),
    ("tables", "text", "text", "a CSV table", "p.", "csv"),
    ("tables", "text", "text", "a TSV table", "p.", "tsv tab"),
    ("text", "text", "text", "a JSON file", "p.", "json"),
    ("text", "text", "text", "an XML file", "p.", "xml"),
    # E-mail: the message, then its attachments (rag.ingest.mail).
    ("e-mail", "email", "text", "an e-mail message", "p.", "eml"),
    ("e-mail", "email", "ole", "an Outlook message", "p.", "msg"),
)
# fmt: on
FORMATS: tuple[Format, ...] = tuple(
    Format("." + ending, family, name, container, unit, group)
    for group, family, container, name, unit, endings in _TABLE
    for ending in endings.split()
)
BY_ENDING = {f.ending: f for f in FORMATS}
SUPPORTED = tuple(BY_ENDING)
FAMILIES = ("pdf", "image", "office", "text", "email")
PDF = ".pdf"
IMAGES = tuple(f.ending for f in FORMATS if f.family == "image")
OFFICE = tuple(f.ending for f in FORMATS if f.family == "office")
ZIPPED = tuple(f.ending for f in FORMATS if f.container == "zip")


def suffix(name: str | Path) -> str:
    """The lower-case extension of a file name (``REPORT.PDF`` -> ``.pdf``)."""
    return Path(name).suffix.lower()


def format_of(name: str | Path) -> Format | None:
    """The format a file's extension names, if the app reads it."""
    return BY_ENDING.get(suffix(name))


def kind(name: str | Path) -> str:
    """The family of a file, by extension: ``pdf``, ``image``, ``office``, ``text``,
    ``email`` or ``unknown``.

    >>> kind("Deck.PPTX"), kind("scan.tiff"), kind("report.pdf"), kind("notes.txt")
    ('office', 'image', 'pdf', 'text')
    >>> kind("mail.eml"), kind("setup.exe")
    ('email', 'unknown')
    """
    found = format_of(name)
    return found.family if found else "unknown"


def describe(name: str | Path) -> str:
    """What a file of this name is called in messages (``a Word template``)."""
    found = format_of(name)
    return found.name if found else "a supported file"


def head(path: Path) -> bytes:
    with Path(path).open("rb") as handle:
        return handle.read(HEAD)


def content_matches(path: Path, ending: str) -> bool:
    """Whether ``path``'s first bytes are what a file ending in ``ending`` holds."""
    return _matches(head(path), BY_ENDING[ending].container)


_CONTAINERS = {
    "zip": lambda start: start.startswith(ZIP_MAGIC),
    "ole": lambda start: start.startswith(OLE_MAGIC),
    "rtf": lambda start: start.startswith(b"{\\rtf"),
    "pdf": lambda start: _PDF_MAGIC in start[:1024],
    "webp": lambda start: start[:4] == b"RIFF" and start[8:12] == b"WEBP",
    "flat-xml": lambda start: (
        start.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml") and b"office:document" in start
    ),
    **{
        name: (lambda start, magics=magics: start.startswith(magics))
        for name, magics in _IMAGE_MAGIC.items()
    },
}


def _matches(start: bytes, container: str) -> bool:
    return _CONTAINERS[container](start)


def is_text(start: bytes) -> bool:
    """Whether a file's first bytes are text in some encoding (an HTML page included): no NUL
    byte (none in UTF-8 or any 8-bit code page), unless a byte-order mark or the pattern of
    UTF-16 says otherwise, and not a known binary container.

    >>> is_text(b"<!DOCTYPE html><p>x</p>"), is_text(b"caf\\xe9"), is_text(b"PK\\x03\\x04")
    (True, True, False)
    """
    if start.startswith(_BOMS) or _utf16_without_bom(start):
        return True
    return b"\x00" not in start and what_it_is(start) in ("text", "an HTML page")


_CONTAINERS["text"] = is_text


def _utf16_without_bom(start: bytes) -> bool:
    """Mostly ASCII text in UTF-16: every other byte is NUL, the rest are not."""
    sample = start[: len(start) // 2 * 2]
    if len(sample) < 8:
        return False
    evens, odds = sample[0::2], sample[1::2]
    for zeros, text in ((evens, odds), (odds, evens)):
        if zeros.count(0) >= 0.9 * len(zeros) and text.count(0) <= 0.1 * len(text):
            return True
    return False


_SEEN_AS = (  # (container, what it is called), most telling first
    ("zip", "a zip archive"),
    ("ole", "an OLE compound file (a Word, Excel, PowerPoint or Outlook file)"),
    ("pdf", "a PDF"),
    ("rtf", "an RTF document"),
    *((name, "an image") for name in (*_IMAGE_MAGIC, "webp")),
)


def what_it_is(start: bytes) -> str:
    """What a file's first bytes show it to be, for messages: ``a zip archive``, ``a PDF``,
    ``an image``, ... ``text``, or ``""`` when they say nothing recognisable.

    >>> what_it_is(b"PK\\x03\\x04..."), what_it_is(b"%PDF-1.7"), what_it_is(b"<!DOCTYPE html>")
    ('a zip archive', 'a PDF', 'an HTML page')
    """
    seen = next((said for container, said in _SEEN_AS if _CONTAINERS[container](start)), None)
    if seen is None and start[:512].lstrip().lower().startswith((b"<!doctype html", b"<html")):
        seen = "an HTML page"
    if seen is None and (b"\x00" in start or sum(b < 9 for b in start[:512]) > 4):
        seen = ""
    return "text" if seen is None else seen


def mismatch(name: str, path: Path) -> str:
    """The one line refusing ``name`` whose content is not what its extension says."""
    said = what_it_is(head(path))
    content = f"its content is {said}" if said else "its content is not one"
    if said == "text":
        content = "its content is plain text"
    return f"{name}: named as {describe(name)}, but {content}"


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


def families() -> dict[str, tuple[str, ...]]:
    """Each family's extensions, in ``FORMATS`` order (for the type tables and the upload
    box's legend)."""
    return {family: tuple(f.ending for f in FORMATS if f.family == family) for family in FAMILIES}


def groups() -> dict[str, tuple[str, ...]]:
    """The extensions of each kind people name (``Word``, ``images``, ...), in table order."""
    named: dict[str, list[str]] = {}
    for found in FORMATS:
        named.setdefault(found.group, []).append(found.ending)
    return {group: tuple(endings) for group, endings in named.items()}


def supported_summary() -> str:
    """The supported kinds in words, for a message refusing another one.

    >>> supported_summary()[-33:]
    'Markdown, HTML, tables and e-mail'
    """
    *named, last = groups()
    return f"it reads {', '.join(named)} and {last}"


def types_legend() -> str:
    """The upload box's list of what it takes, one line (Markdown).

    >>> types_legend().startswith("PDF; images (png jpg jpeg")
    True
    """
    parts = ["PDF"] + [
        f"{group} ({' '.join(e[1:] for e in endings)})"
        for group, endings in groups().items()
        if group != "PDF"
    ]
    return (
        "; ".join(parts)
        + ". Each file is one document: a TIFF's frames are its pages, an e-mail's attachments "
        "follow its message."
    )
