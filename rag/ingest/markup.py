"""Text files (plain text, Markdown, HTML, CSV/TSV, JSON, XML) -> one HTML page each -> PDF.

Each is drawn as a person reads it, by WeasyPrint (``rag.ingest.webpage``, offline, in a child
process): plain text and XML as their source, wrapped; Markdown rendered (headings, lists,
tables, code); an HTML page as it is (no script runs, nothing remote or on disk is loaded);
a CSV or TSV file as a table (``rag.ingest.tables``); JSON pretty-printed when it parses. The
PDF's text layer holds the source's own words, so they are read exactly, never by OCR.

A file is refused in one line before anything is laid out when it is not text, holds no text,
is over ``MAX_TEXT_MB``, or would draw to more pages than a file may have: pages are estimated
from its characters, lines and rows (what an A4 page holds, measured), low rather than high,
and WeasyPrint's own count is checked again before the PDF is written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import EmptyPdfError, PdfTooLargeError, UnsupportedFileError
from rag.ingest import formats, sandbox, tables, webpage
from rag.ingest.decoding import decode

MAX_TEXT_MB = 32  # dense text fills ~6 KB a page: 32 MB is ~5,000 pages, past any page limit
# What an A4 page holds with webpage.STYLE, measured with WeasyPrint 70: lines of source
# (8.5 pt monospace) and their characters; lines of prose (10 pt) and their characters.
SOURCE_LINE_CHARS, SOURCE_PAGE_LINES = 98, 65
PROSE_LINE_CHARS, PROSE_PAGE_LINES = 100, 55
# Source lines per <pre>: WeasyPrint lays out one long <pre> in time quadratic in its length.
CHUNK_LINES = 50
# Control characters a page cannot draw (tab and newline stay; a form feed becomes a newline).
_CONTROLS = {c: None for c in (*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), *range(0x7F, 0xA0))}
_CONTROLS[0x0C] = "\n"
_BLOCKS = re.compile(r"\n[ \t]*\n")
# A tag, and the start of an element whose content is not drawn. ``[^<>]`` keeps each match
# short, so that a page of unclosed ``<`` costs linear time, not quadratic.
_TAG = re.compile(r"<[^<>]*>")
_UNDRAWN = re.compile(r"<(script|style|template)\b", re.I)


@dataclass(frozen=True)
class Page:
    """A text file as the one HTML page to draw: the page, about how many A4 pages it draws
    to, more CSS for it, what the user should know, what the estimate counts, and whether the
    page is still Markdown (rendered in the drawing's child)."""

    html: str  # or Markdown, when ``markdown``
    pages: int
    style: str = ""
    notes: tuple[str, ...] = ()
    counted: str = "text"
    markdown: bool = False


def check(path: Path, name: str, settings: Settings) -> None:
    """Refuse, before reading it, a file over ``MAX_TEXT_MB`` or that is not text."""
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_TEXT_MB:
        raise PdfTooLargeError(
            f"{name}: {size_mb:,.0f} MB of text, over the {MAX_TEXT_MB} MB limit for a text file "
            f"(it would draw to thousands of pages)"
        )
    if not formats.content_matches(path, _ending(path, name)):
        raise UnsupportedFileError(formats.mismatch(name, path))


def _ending(path: Path, name: str) -> str:
    found = formats.format_of(name) or formats.format_of(path)
    return found.ending if found else ".txt"


def to_pdf(
    path: Path, target: Path, name: str, budget: sandbox.Budget, settings: Settings
) -> tuple[str, ...]:
    """Draw the text file ``path`` (``name`` says its kind) as the PDF ``target``; returns
    what the user should know (resources not loaded, a table cut into bands). Raises a
    PdfError (one line) for a file with no text, or one that would draw past the page limit."""
    text = clean(decode(path.read_bytes()))
    if not text.strip():
        raise EmptyPdfError(f"{name}: the file holds no text")
    page = draw(text, _ending(path, name), name, settings.max_pages)
    refuse_past(page.pages, page.counted, name, settings.max_pages)
    not_loaded = webpage.to_pdf(
        page.html,
        target,
        name,
        budget,
        settings.max_pages,
        style=page.style,
        markdown=page.markdown,
    )
    return (*page.notes, *webpage.not_loaded_note(not_loaded))


def refuse_past(pages: int, counted: str, name: str, max_pages: int) -> None:
    """Refuse a file whose estimate of ``pages`` (of text, of table) is over ``max_pages``."""
    if pages > max_pages:
        raise PdfTooLargeError(
            f"{name}: about {pages:,} pages of {counted}, over the {max_pages}-page limit "
            "(RAG_MAX_PAGES)"
        )


def clean(text: str) -> str:
    """``text`` with its newlines made ``\\n`` and the control characters no page draws
    removed.

    >>> clean("a\\r\\nb\\rc\\x00d\\x0ce\\tf")
    'a\\nb\\ncd\\ne\\tf'
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)


def draw(text: str, ending: str, name: str, max_pages: int) -> Page:
    """``text``, the content of a file ending in ``ending``, as the HTML page to draw; a
    PdfTooLargeError for a table over a limit (columns, a cell, its pages)."""
    drawers: dict[str, Callable[[str], Page]] = {
        ".md": markdown_page,
        ".markdown": markdown_page,
        ".html": html_page,
        ".htm": html_page,
        ".xhtml": html_page,
        ".csv": lambda t: table_page(t, tables.delimiter_of(t), name, max_pages),
        ".tsv": lambda t: table_page(t, "\t", name, max_pages),
        ".tab": lambda t: table_page(t, "\t", name, max_pages),
        ".json": json_page,
    }
    return drawers.get(ending, source_page)(text)


def source_page(text: str) -> Page:
    """Plain text (and XML, never parsed: its entities could expand without end) as it is
    written, in monospace, long lines wrapped."""
    lines = text.split("\n")
    chunks = []
    start = 0
    while start < len(lines):
        end = min(start + CHUNK_LINES, len(lines))
        while end < len(lines) and not lines[end - 1].strip():
            end += 1  # a <pre> does not draw the empty lines it ends with: the next one does
        # the parser drops a newline right after <pre>: the first one is given for it
        chunks.append('<pre class="source">\n' + webpage.escape("\n".join(lines[start:end])))
        start = end
    html = '<div class="source">' + "</pre>".join(chunks) + "</pre></div>"
    return Page(html, estimate(lines, SOURCE_LINE_CHARS, SOURCE_PAGE_LINES))


def estimate(lines: list[str], line_chars: int, page_lines: int) -> int:
    """About how many pages ``lines`` take, each wrapped at ``line_chars`` characters.

    >>> estimate(["x" * 250] * 64, 100, 64)  # each line wraps to three
    3
    """
    drawn = sum(max(math.ceil(len(line) / line_chars), 1) for line in lines)
    return math.ceil(drawn / page_lines)


def markdown_page(text: str) -> Page:
    """Markdown, rendered in WeasyPrint's child (``webpage.markdown_html``): headings, lists,
    tables, code; its raw HTML kept, drawn like an HTML page's. The estimate joins each
    paragraph's lines (each block between empty lines wraps as one, then a gap)."""
    blocks = [" ".join(block.split()) for block in _BLOCKS.split(text)]
    lines = [line for block in blocks if block for line in (block, "")]
    return Page(text, estimate(lines, PROSE_LINE_CHARS, PROSE_PAGE_LINES), markdown=True)


def html_page(text: str) -> Page:
    """An HTML page as it is; its estimate counts the characters it shows."""
    return Page(text, math.ceil(shown_chars(text) / (PROSE_LINE_CHARS * PROSE_PAGE_LINES)))


def shown_chars(page: str) -> int:
    """About how many characters an HTML page shows: not its tags, nor its scripts, styles
    and templates (nothing after one left open), its spaces collapsed; in linear time.

    >>> shown_chars("<p>a  b</p><script>var x = '<p>';</script><STYLE>p {}</STYLE>c")
    4
    """
    lower, shown, at = page.lower(), 0, 0
    for opened in _UNDRAWN.finditer(page):
        if opened.start() < at:
            continue  # inside the element skipped last
        shown += _drawn(page[at : opened.start()])
        closed = lower.find("</" + opened.group(1).lower(), opened.end())
        at = len(page) if closed < 0 else closed
    return shown + _drawn(page[at:])


def _drawn(part: str) -> int:
    return len(" ".join(_TAG.sub(" ", part).split()))


def table_page(text: str, delimiter: str, name: str, max_pages: int) -> Page:
    """A CSV or TSV table, the first row its header, cut into bands when too wide."""
    table = tables.read(text, delimiter, name, max_pages)
    layout = tables.lay_out(table)
    refuse_past(layout.pages, "table", name, max_pages)  # before its HTML is made
    html = tables.to_html(table, layout)
    return Page(html, layout.pages, tables.style(layout), tables.notes(table, layout), "table")


def json_page(text: str) -> Page:
    """JSON pretty-printed, when it parses with no key twice in an object (Python would keep
    the last one only); else as it is written."""
    try:
        value = json.loads(text, object_pairs_hook=_no_repeated_key)
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON (JSON Lines, say), or nested too deeply
        pretty = text
    return source_page(pretty)


def _no_repeated_key(pairs: list[tuple[str, object]]) -> dict:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a key repeated")
    return found
