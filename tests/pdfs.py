"""Bad and unusual PDFs for tests, made with pypdf from the samples."""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader, PdfWriter

from tests.conftest import SAMPLES


def encrypted(folder: Path, source: Path = SAMPLES / "expense_form.pdf") -> Path:
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    return _write(writer, folder / "locked.pdf")


def truncated(folder: Path, source: Path = SAMPLES / "annual_report.pdf") -> Path:
    target = folder / "broken.pdf"
    target.write_bytes(source.read_bytes()[:900])
    return target


def blank_pages(folder: Path, count: int, width: float = 595, height: float = 842) -> Path:
    writer = PdfWriter()
    for _ in range(count):
        writer.add_blank_page(width=width, height=height)
    return _write(writer, folder / f"blank-{count}-{int(width)}x{int(height)}.pdf")


def _write(writer: PdfWriter, target: Path) -> Path:
    with target.open("wb") as handle:
        writer.write(handle)
    return target
