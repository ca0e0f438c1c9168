"""PDFs for the tests, healthy, unusual and hostile, each built here from nothing but pypdf,
zlib and the samples."""

from __future__ import annotations

import io
import os
import random
import re
import unicodedata
import zlib
from pathlib import Path

from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

from rag.config import Settings
from rag.ingest.pdf import PdfInfo, RenderedPage, inspect_pdf, render_pages
from tests.helpers import SAMPLES
from tests.helpers.files import truncated, write

SOURCE = SAMPLES / "annual_report.pdf"
EXPENSE_FORM = SAMPLES / "expense_form.pdf"  # one page
A4 = (595, 842)


def rendered(
    path: Path, settings: Settings, folder: Path, password: str | None = None
) -> tuple[PdfInfo, list[RenderedPage]]:
    """``path`` inspected and its pages rendered into ``folder``, as ingestion does."""
    info = inspect_pdf(path, settings, password=password)
    return info, list(render_pages(path, folder, settings, info))


def distinct_copies(folder: Path, count: int, source: Path = SOURCE) -> list[Path]:
    """``count`` copies of ``source`` with different bytes (so different document ids): each
    ends with its own comment."""
    folder.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    paths = [folder / f"doc{i}.pdf" for i in range(count)]
    for i, path in enumerate(paths):
        path.write_bytes(data + f"\n% copy {i}\n".encode())
    return paths


def blank_pages(path: Path, sizes: int | list[tuple[float, float]], rotate: int = 0) -> Path:
    """Blank pages: ``sizes`` (width, height) in points, or that many A4 pages; each rotated by
    ``rotate``."""
    if isinstance(sizes, int):
        sizes = [A4] * sizes
    writer = PdfWriter()
    for width, height in sizes:
        page = writer.add_blank_page(width=width, height=height)
        if rotate:
            page.rotate(rotate)
    return _save(writer, path)


def drawing_pdf(path: Path, content: bytes) -> Path:
    """One letter page whose FlateDecode content stream inflates to ``content``."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    page[NameObject("/Contents")] = writer._add_object(_raw_stream(zlib.compress(content, 9)))
    return _save(writer, path)


def endless_drawing(path: Path) -> Path:
    """~100 MB of stroked lines behind 0.3 MB of deflate: minutes of rendering."""
    return drawing_pdf(path, b"0 0 m 600 700 l S 10 10 m 500 20 l S\n" * 3_000_000)


def deflate_bomb(path: Path) -> Path:
    """A content stream of ~1 GB of spaces compressed to ~1 MB."""
    return drawing_pdf(path, b" " * (1 << 30))


def deeply_nested(path: Path, depth: int = 200_000) -> Path:
    """A page whose dictionary holds an array nested ``depth`` levels deep."""
    return write(
        path,
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Deep "
        + b"[" * depth
        + b"]" * depth
        + b" >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    )


def encrypted(
    path: Path,
    user: str = "secret",
    owner: str = "owner",
    algorithm: str = "RC4-128",
    source: Path = SOURCE,
) -> Path:
    """``source`` encrypted; "AES-256" (revision 6, PDF 2.0) prepares passwords by SASLprep,
    "RC4-128" encodes them in Latin-1."""
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=user, owner_password=owner, algorithm=algorithm)
    return _save(writer, path)


def nested_forms(path: Path, depth: int = 16) -> Path:
    """One page drawing a form that draws the next form four times, ``depth`` deep: 4**depth
    rectangles (4**16, ~4e9) from a 2 KB file; poppler would work on its one page for hours."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /XObject << /F 5 0 R >> >> /Contents 4 0 R >>",
        4: _stream(b"<<", b"q 600 0 0 780 6 6 cm /F Do Q"),
    }
    quarters = b"".join(
        b"q .5 0 0 .5 %g %g cm /F Do Q " % (i % 2 / 2, i // 2 / 2) for i in range(4)
    )
    for level in range(depth):
        number = 5 + level
        body, resources = b"0 0 1 1 re f", b""  # the innermost form: a filled square
        if level < depth - 1:
            body, resources = quarters, b" /Resources << /XObject << /F %d 0 R >> >>" % (number + 1)
        form = b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1]" + resources
        objects[number] = _stream(form, body)
    return write(path, _assemble(objects))


def damaged_pages(path: Path, pages: int = 16, damaged: int = 14) -> Path:
    """A ``pages``-page copy of the sample whose last ``damaged`` pages have content streams of
    garbage that claim to be deflated: poppler complains and draws those pages blank."""
    reader = PdfReader(SOURCE)
    writer = PdfWriter()
    rng = random.Random(13)
    for number in range(pages):
        page = writer.add_page(reader.pages[number % len(reader.pages)])
        if number >= pages - damaged:
            garbage = b"\x00" + rng.randbytes(2000)  # compression method 0: not deflate
            page[NameObject("/Contents")] = writer._add_object(_raw_stream(garbage))
    return _save(writer, path)


def with_blank_page(path: Path) -> Path:
    """The sample with a deliberately empty page 2: a healthy file."""
    reader = PdfReader(SOURCE)
    writer = PdfWriter()
    writer.add_page(reader.pages[0])
    writer.add_blank_page(width=595, height=842)
    writer.add_page(reader.pages[1])
    return _save(writer, path)


def xfa_form(path: Path) -> Path:
    """A dynamic XFA form: its one page holds only a placeholder, the form lives in XML."""
    writer = PdfWriter(clone_from=PdfReader(SOURCE))
    while len(writer.pages) > 1:
        writer.remove_page(len(writer.pages) - 1)
    template = StreamObject()
    template.set_data(b'<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template/></xdp:xdp>')
    xfa = ArrayObject([TextStringObject("template"), writer._add_object(template)])
    form = DictionaryObject({NameObject("/Fields"): ArrayObject(), NameObject("/XFA"): xfa})
    writer._root_object[NameObject("/AcroForm")] = writer._add_object(form)
    writer._root_object[NameObject("/NeedsRendering")] = BooleanObject(True)
    return _save(writer, path)


def without_header(path: Path) -> Path:
    """The sample with its ``%PDF-1.x`` header line removed: poppler still reads it."""
    data = SOURCE.read_bytes()
    return write(path, data[data.index(b"\n") + 1 :])


def decomposed(text: str) -> str:
    """``text`` as a keyboard may send it: accents as separate combining characters."""
    return unicodedata.normalize("NFD", text)


def lying_page_count(path: Path) -> Path:
    """A 3-page PDF whose page tree claims 9 pages."""
    data = SOURCE.read_bytes()
    lied, count = re.subn(rb"/Count 3\b", b"/Count 9", data)
    assert count, "the sample has no /Count 3 to lie about"
    return write(path, lied)


def broken_xref(path: Path) -> Path:
    """The sample with its startxref offset pointing nowhere (poppler rebuilds the table)."""
    data = SOURCE.read_bytes()
    position = data.rindex(b"startxref")
    return write(path, data[:position] + b"startxref\n999999999\n%%EOF\n")


def junk_before_header(path: Path, junk: int) -> Path:
    return write(path, os.urandom(junk).replace(b"%PDF-", b"xxxxx") + SOURCE.read_bytes())


def image_named_pdf(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    return write(path, buffer.getvalue())


def every_bad_file(folder: Path) -> dict[str, Path]:
    """One of each hostile file the CLI must refuse (or index) in one line, never crash on."""
    folder.mkdir(parents=True, exist_ok=True)
    data = SOURCE.read_bytes()
    return {
        "empty": write(folder / "empty.pdf", b""),
        "random": write(folder / "random.pdf", os.urandom(4096)),
        "image": image_named_pdf(folder / "photo.pdf"),
        "html": write(folder / "page.pdf", b"<!doctype html><html><body>hi</body></html>"),
        "truncated": truncated(folder / "truncated.pdf", data, keep=len(data) // 3),
        "header-only": write(folder / "header.pdf", b"%PDF-1.7\n%%EOF\n"),
        "encrypted": encrypted(folder / "locked.pdf"),
        "no-pages": blank_pages(folder / "nopages.pdf", []),
        "tiny-page": blank_pages(folder / "tiny.pdf", [(1, 1)]),
        "lying-count": lying_page_count(folder / "lying.pdf"),
        "dash-name": write(folder / "-rf.pdf", data),
    }


def _stream(dictionary_start: bytes, body: bytes) -> bytes:
    return dictionary_start + b" /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"


def _raw_stream(data: bytes) -> StreamObject:
    """A stream whose bytes are ``data`` as they are, labelled FlateDecode."""
    stream = StreamObject()
    stream.set_data(b"")
    stream._data = data
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    stream[NameObject("/Length")] = NumberObject(len(data))
    return stream


def _assemble(objects: dict[int, bytes]) -> bytes:
    """A PDF file of numbered objects with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref, size = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[number] for number in range(1, size))
    out += b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def _save(writer: PdfWriter, path: Path) -> Path:
    with path.open("wb") as handle:
        writer.write(handle)
    return path
