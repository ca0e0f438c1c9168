"""Hostile and broken files, each built here from nothing but pypdf, zlib and the samples."""

from __future__ import annotations

import io
import os
import re
import zlib
from pathlib import Path

from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, NumberObject, StreamObject

from tests.conftest import SAMPLES

SOURCE = SAMPLES / "annual_report.pdf"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def pages_pdf(path: Path, sizes: list[tuple[float, float]], rotate: int = 0) -> Path:
    """Blank pages of the given (width, height) sizes in points, each rotated by ``rotate``."""
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
    stream = StreamObject()
    stream.set_data(b"")
    stream._data = zlib.compress(content, 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    stream[NameObject("/Length")] = NumberObject(len(stream._data))
    page[NameObject("/Contents")] = writer._add_object(stream)
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


def encrypted(path: Path, user: str, owner: str) -> Path:
    writer = PdfWriter(clone_from=PdfReader(SOURCE))
    # RC4: AES would need the cryptography package.
    writer.encrypt(user_password=user, owner_password=owner, algorithm="RC4-128")
    return _save(writer, path)


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
        "truncated": write(folder / "truncated.pdf", data[: len(data) // 3]),
        "header-only": write(folder / "header.pdf", b"%PDF-1.7\n%%EOF\n"),
        "encrypted": encrypted(folder / "locked.pdf", "secret", "owner"),
        "no-pages": pages_pdf(folder / "nopages.pdf", []),
        "tiny-page": pages_pdf(folder / "tiny.pdf", [(1, 1)]),
        "lying-count": lying_page_count(folder / "lying.pdf"),
        "dash-name": write(folder / "-rf.pdf", data),
    }


def _save(writer: PdfWriter, path: Path) -> Path:
    with path.open("wb") as handle:
        writer.write(handle)
    return path
