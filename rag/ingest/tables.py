"""A CSV or TSV table -> HTML tables that fit a page, for ``rag.ingest.markup``.

The first row is the header, repeated at the top of every page. A table too wide for a page
is cut into bands of columns, drawn on landscape pages: each band its own table, headed by
the columns it shows (``columns 9 to 16 of 40``, with an en dash), the first column repeated
so that every row can still be told apart. Column widths are estimated from the cells' text
(at most ``COLUMN_PT[1]``: longer cells wrap). Ragged rows get empty cells; blank lines are
left out.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import unicodedata
from dataclasses import dataclass

from rag.errors import PdfTooLargeError
from rag.ingest.webpage import escape

MAX_COLUMNS = 1_000  # each band repeats every row: 1,000 short columns make 30 to 80 bands
MAX_CELL_CHARS = 32_767  # Excel's own limit for a cell
DELIMITERS = ",;|\t"  # what a .csv may be separated by (sniffed)
SNIFF_CHARS = 4096  # csv.Sniffer takes time quadratic in this on hostile quotes (16 KB: 1.5 s)
# A column's text is COLUMN_PT wide: at least, at most (longer cells wrap). Its width is its
# widest cell's among the header and the first SAMPLE_ROWS rows (a wider one later wraps).
COLUMN_PT = (16.0, 160.0)
SAMPLE_ROWS = 500
# An A4 page inside webpage.STYLE's margins, in points (width, height); a line of the tables'
# 8 pt type at line-height 1.35; what a cell's padding and rules add to a column's width and
# to a row's height; and the average character of words (how many lines a long cell wraps to).
PAGE_PT = {"portrait": (515.0, 751.0), "landscape": (762.0, 504.0)}
LINE_PT, PAD_X_PT, PAD_Y_PT, WORDS_CHAR_PT = 10.8, 8.5, 4.5, 4.6
# Characters of DejaVu Sans at 8 pt, a little wider than they are (a column must hold its
# widest cell unbroken): most, capitals and digits, the widest letters and East Asian wide
# characters; a header's bold characters are wider by HEADER_WIDER.
CHAR_PT, CAPITAL_PT, WIDE_PT = 5.0, 6.0, 8.0
HEADER_WIDER = 1.1


def points_of(text: str) -> float:
    """About how wide ``text`` is drawn in a table cell, in points (no wrapping).

    >>> points_of("lark"), points_of("R2"), points_of("WW"), points_of("東京")
    (20.0, 12.0, 16.0, 16.0)
    """
    return sum(_character_pt(c) for c in text)


@functools.lru_cache(maxsize=4096)
def _character_pt(character: str) -> float:
    if character in "MWmw@%" or unicodedata.east_asian_width(character) in "WF":
        return WIDE_PT
    if character.isupper() or character.isdigit() or not character.isascii():
        return CAPITAL_PT
    return CHAR_PT


# The most cells a page can hold (of the narrowest columns): reading stops at this many per page
# allowed, since more draw past the page limit whatever their widths.
CELLS_PER_PAGE = max(
    int(width / (COLUMN_PT[0] + PAD_X_PT) * height / (LINE_PT + PAD_Y_PT))
    for width, height in PAGE_PT.values()
)
# Fixed layout (the columns' widths given, not measured from every cell): twice as fast.
STYLE = (
    "table.csv { font-size: 8pt; table-layout: fixed; }"
    " table.csv th.band { font-weight: normal; background: none; color: #444; }"
)
LANDSCAPE = "@page { size: A4 landscape; }"


@dataclass(frozen=True)
class Table:
    """A table's rows, the header first (rows may be ragged), its widest row's length, and
    how many rows the file holds (more than ``rows`` when reading stopped early: an estimate)."""

    rows: list[list[str]]
    columns: int
    total_rows: int


@dataclass(frozen=True)
class Layout:
    """How a table is drawn: its bands (column numbers from 0, the first column repeated in
    each band after the first), each column's text width in points, the page's orientation,
    and about how many pages it takes."""

    bands: list[list[int]]
    widths: list[float]
    orientation: str
    pages: int


def delimiter_of(text: str) -> str:
    """The delimiter of a CSV file: comma, semicolon, pipe or tab, sniffed from its start.

    >>> delimiter_of("a;b;c\\n1;2;3\\n"), delimiter_of("name|age\\nAda|36\\n"), delimiter_of("x")
    (';', '|', ',')
    """
    sample = text[:SNIFF_CHARS]
    sample = sample[: sample.rfind("\n") + 1] or sample
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:  # no delimiter found the same number of times on every line
        first = sample.partition("\n")[0]
        return max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","


def read(text: str, delimiter: str, name: str, max_pages: int) -> Table:
    """The rows of ``text``; a PdfTooLargeError for a row over ``MAX_COLUMNS`` or a cell over
    ``MAX_CELL_CHARS``. Reading stops past the rows or cells that ``max_pages`` pages can hold
    (then ``total_rows`` is estimated, and the caller refuses the table on its pages)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    max_rows = max_pages * int(PAGE_PT["portrait"][1] / (LINE_PT + PAD_Y_PT))
    max_cells = max_pages * CELLS_PER_PAGE
    rows: list[list[str]] = []
    columns = cells = 0
    try:
        for row in reader:
            if not row:
                continue  # a blank line
            _check_row(row, len(rows) + 1, name)
            rows.append(row)
            columns, cells = max(columns, len(row)), cells + len(row)
            if len(rows) > max_rows or cells > max_cells:
                lines_read = max(reader.line_num, 1)
                total = len(rows) * (text.count("\n") + 1) // lines_read
                return Table(rows, columns, max(total, len(rows)))
    except csv.Error:  # with newlines made \n and NULs removed, only a cell over csv's limit
        raise _cell_too_long(name, len(rows) + 1) from None
    return Table(rows, columns, len(rows))


def _check_row(row: list[str], number: int, name: str) -> None:
    if len(row) > MAX_COLUMNS:
        raise PdfTooLargeError(
            f"{name}: row {number:,} has {len(row):,} columns, over the {MAX_COLUMNS:,}-column "
            "limit for a table"
        )
    if any(len(cell) > MAX_CELL_CHARS for cell in row):
        raise _cell_too_long(name, number)


def _cell_too_long(name: str, number: int) -> PdfTooLargeError:
    return PdfTooLargeError(
        f"{name}: a cell in row {number:,} holds more than {MAX_CELL_CHARS:,} characters, the "
        "limit for a table cell (a quote left open makes the rest of a file one cell)"
    )


def lay_out(table: Table) -> Layout:
    """The bands, orientation and page estimate of ``table``."""
    widths = _widths(table)
    portrait, landscape = PAGE_PT["portrait"][0], PAGE_PT["landscape"][0]
    if sum(widths) + PAD_X_PT * len(widths) <= portrait:
        bands, orientation = [list(range(table.columns))], "portrait"
    else:
        bands, orientation = _bands(widths, landscape), "landscape"
    height = sum(_height(table, band, widths) for band in bands)
    scale = table.total_rows / max(len(table.rows), 1)
    pages = math.ceil(height * scale / PAGE_PT[orientation][1])
    return Layout(bands, widths, orientation, pages)


def _widths(table: Table) -> list[float]:
    """Each column's text width in points: its widest cell's (of the header and the first
    ``SAMPLE_ROWS`` rows), within ``COLUMN_PT``."""
    low, high = COLUMN_PT
    widest = [low] * table.columns
    most = math.ceil(high / CHAR_PT)  # characters past this many are wider than a column
    for index, row in enumerate(table.rows[: SAMPLE_ROWS + 1]):
        wider = HEADER_WIDER if index == 0 else 1.0
        for number, cell in enumerate(row):
            if len(cell) * WIDE_PT * wider > widest[number]:  # else it cannot be wider
                width = points_of(cell[:most]) * wider
                widest[number] = max(widest[number], min(width, high))
    return widest


def _bands(widths: list[float], page: float) -> list[list[int]]:
    """Columns in bands no wider than ``page`` points (one column at least), each band after
    the first starting with column 0 again."""
    bands: list[list[int]] = [[]]
    used = 0.0
    for number, width in enumerate(widths):
        if bands[-1] and used + width + PAD_X_PT > page:
            bands.append([0])
            used = widths[0] + PAD_X_PT
        bands[-1].append(number)
        used += width + PAD_X_PT
    return bands


def _height(table: Table, band: list[int], widths: list[float]) -> float:
    """The points a band's rows take (a row as tall as its tallest cell wraps to), with the
    line that says its columns."""
    height = LINE_PT
    fits = [(n, widths[n] / WORDS_CHAR_PT) for n in band]  # characters a line holds
    for row in table.rows:
        cells = ((row[n] if n < len(row) else "", chars) for n, chars in fits)
        lines = max(max(math.ceil(len(cell) / chars), 1) for cell, chars in cells)
        height += lines * LINE_PT + PAD_Y_PT
    return height


def to_html(table: Table, layout: Layout) -> str:
    """The table as HTML: one ``<table>`` per band, the columns' widths given (fixed layout),
    the header row in ``<thead>`` (repeated on every page), above it the band's columns said
    when there are several bands."""
    parts = []
    header, *rows = table.rows or [[]]
    for number, band in enumerate(layout.bands):
        points = [layout.widths[n] + PAD_X_PT for n in band]
        columns = "".join(f'<col style="width: {p:.1f}pt">' for p in points)
        said = _band_row(band, table.columns, number > 0) if len(layout.bands) > 1 else ""
        parts.append(
            f'<table class="csv" style="width: {sum(points):.1f}pt"><colgroup>{columns}'
            f"</colgroup><thead>{said}{_row(header, band, 'th')}</thead><tbody>"
            + "".join(_row(row, band, "td") for row in rows)
            + "</tbody></table>"
        )
    return "\n".join(parts)


def _band_row(band: list[int], columns: int, repeated: bool) -> str:
    first, last = band[1] if repeated else band[0], band[-1]
    again = " (column 1 repeated)" if repeated else ""
    said = f"columns {first + 1}–{last + 1} of {columns}{again}"
    return f'<tr><th class="band" colspan="{len(band)}">{said}</th></tr>'


def _row(row: list[str], band: list[int], tag: str) -> str:
    cells = (escape(row[n]) if n < len(row) else "" for n in band)
    return "<tr>" + "".join(f"<{tag}>{cell}</{tag}>" for cell in cells) + "</tr>"


def style(layout: Layout) -> str:
    """The CSS a table's pages need: its type, and landscape pages for a banded table."""
    return STYLE + (LANDSCAPE if layout.orientation == "landscape" else "")


def notes(table: Table, layout: Layout) -> tuple[str, ...]:
    """What the user should know: that a wide table was cut into bands."""
    if len(layout.bands) == 1:
        return ()
    return (
        f"{table.columns} columns, too wide for a page: drawn in {len(layout.bands)} parts, each "
        "with the first column repeated",
    )
