"""A minimal Excel binary workbook (.xlsb), written from the [MS-XLSB] specification.

No maintained Python library writes .xlsb and LibreOffice reads it but cannot save it, so the
tests make their own: an OPC zip package like an .xlsx, whose workbook and sheets are BIFF12
record streams instead of XML. A record is its type and its size, each a little-endian run of
7-bit groups (the high bit says another byte follows), then its payload ([MS-XLSB] 2.1.4).

Only what a reader needs is written: the workbook's list of sheets (``BrtBundleSh``), and per
sheet its used range (``BrtWsDim``) and rows (``BrtRowHdr``) of inline strings (``BrtCellSt``)
and numbers (``BrtCellReal``); no styles part, so every cell has the default style (index 0).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

# Record types ([MS-XLSB] 2.3.2), as the numbers the records are written with.
BEGIN_BOOK, END_BOOK = 0x0083, 0x0084
BEGIN_BUNDLE_SHS, END_BUNDLE_SHS, BUNDLE_SH = 0x008F, 0x0090, 0x009C
BEGIN_SHEET, END_SHEET, WS_DIM = 0x0081, 0x0082, 0x0094
BEGIN_SHEET_DATA, END_SHEET_DATA = 0x0091, 0x0092
ROW_HDR, CELL_REAL, CELL_ST = 0x0000, 0x0005, 0x0006

MAIN = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
WORKSHEET = "application/vnd.ms-excel.worksheet"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE = "http://schemas.openxmlformats.org/package/2006"
ROW_HEIGHT = 300  # twips: Excel's default row, 15 points


def varint(value: int) -> bytes:
    """``value`` in 7-bit groups, lowest first, the high bit set on all but the last.

    >>> varint(0x05).hex(), varint(0x83).hex(), varint(300).hex()
    ('05', '8301', 'ac02')
    """
    out = bytearray()
    while True:
        group, value = value & 0x7F, value >> 7
        out.append(group | (0x80 if value else 0))
        if not value:
            return bytes(out)


def record(kind: int, payload: bytes = b"") -> bytes:
    """One BIFF12 record: its type (at most 2 bytes), its size (at most 4), its payload."""
    return varint(kind) + varint(len(payload)) + payload


def wide_string(text: str) -> bytes:
    """An XLWideString: the count of UTF-16 code units, then the units."""
    data = text.encode("utf-16-le")
    return struct.pack("<I", len(data) // 2) + data


def cell(column: int, value: str | float) -> bytes:
    """A cell of the current row: its column, style 0, and an inline string or a number."""
    where = struct.pack("<II", column, 0)  # column; iStyleRef 0 and no phonetic flag
    if isinstance(value, str):
        return record(CELL_ST, where + wide_string(value))
    return record(CELL_REAL, where + struct.pack("<d", float(value)))


def row(index: int, values: list) -> bytes:
    """A row header, then its cells: one span of columns, from the first to the last."""
    header = struct.pack("<IIHBBB", index, 0, ROW_HEIGHT, 0, 0, 0)
    span = struct.pack("<Iii", 1, 0, max(len(values) - 1, 0))  # ccolspan, colMic, colLast
    return record(ROW_HDR, header + span) + b"".join(
        cell(column, value) for column, value in enumerate(values)
    )


def worksheet(rows: list[list]) -> bytes:
    """A sheet part: its used range, then its rows of cells."""
    columns = max((len(r) for r in rows), default=1)
    used = struct.pack("<iiii", 0, max(len(rows) - 1, 0), 0, max(columns - 1, 0))
    return b"".join(
        [
            record(BEGIN_SHEET),
            record(WS_DIM, used),
            record(BEGIN_SHEET_DATA),
            *(row(index, values) for index, values in enumerate(rows)),
            record(END_SHEET_DATA),
            record(END_SHEET),
        ]
    )


def workbook(titles: list[str]) -> bytes:
    """The workbook part: its sheets, each visible, found by relationship ``rId<n>``."""
    sheets = [
        record(BUNDLE_SH, struct.pack("<II", 0, n) + wide_string(f"rId{n}") + wide_string(title))
        for n, title in enumerate(titles, start=1)
    ]
    return b"".join(
        [
            record(BEGIN_BOOK),
            record(BEGIN_BUNDLE_SHS),
            *sheets,
            record(END_BUNDLE_SHS),
            record(END_BOOK),
        ]
    )


def write(path: Path, sheets: dict[str, list[list]]) -> Path:
    """An .xlsb holding ``sheets`` (title -> rows of strings and numbers), in order."""
    count = len(sheets)
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.bin" ContentType="{WORKSHEET}"/>'
        for n in range(1, count + 1)
    )
    types = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<Types xmlns="{_PACKAGE}/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Override PartName="/xl/workbook.bin" ContentType="{MAIN}"/>{overrides}</Types>'
    )
    sheet_links = "".join(
        f'<Relationship Id="rId{n}" Type="{_RELS}/worksheet" Target="worksheets/sheet{n}.bin"/>'
        for n in range(1, count + 1)
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", types)
        package.writestr(
            "_rels/.rels", _relationships(f"{_RELS}/officeDocument", "xl/workbook.bin")
        )
        package.writestr("xl/_rels/workbook.bin.rels", _relationships(links=sheet_links))
        package.writestr("xl/workbook.bin", workbook(list(sheets)))
        for n, rows in enumerate(sheets.values(), start=1):
            package.writestr(f"xl/worksheets/sheet{n}.bin", worksheet(rows))
    return path


def _relationships(kind: str = "", target: str = "", links: str = "") -> str:
    if kind:
        links = f'<Relationship Id="rId1" Type="{kind}" Target="{target}"/>'
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<Relationships xmlns="{_PACKAGE}/relationships">{links}</Relationships>'
    )
