"""PDF -> page images through the real poppler, and every bad input refused in one line."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from rag import pdf as pdf_module
from rag.errors import (
    CorruptPdfError,
    EmptyPdfError,
    EncryptedPdfError,
    NotAPdfError,
    PdfError,
    PdfTooLargeError,
)
from rag.pdf import inspect_pdf, page_dpi, render_pages
from tests import pdfs
from tests.conftest import SAMPLES


def test_renders_every_page_at_the_configured_dpi(settings, tmp_path):
    info = inspect_pdf(SAMPLES / "annual_report.pdf", settings)
    assert info.pages == 3
    pages = list(render_pages(SAMPLES / "annual_report.pdf", tmp_path, settings))
    assert [page.page_number for page in pages] == [1, 2, 3]
    for page in pages:
        with Image.open(page.path) as image:
            assert image.size == (page.width, page.height)
        # A4 at 48 DPI is about 397 x 561 pixels.
        assert abs(page.width - 595.44 / 72 * settings.dpi) <= 2
        assert abs(page.height - 841.68 / 72 * settings.dpi) <= 2


def test_landscape_pages_stay_landscape(settings, tmp_path):
    pages = list(render_pages(SAMPLES / "product_slides.pdf", tmp_path, settings))
    assert len(pages) == 3
    assert all(page.width > page.height for page in pages)


def test_renders_in_chunks_lazily(settings, tmp_path, monkeypatch):
    # 7 pages in chunks of 3: poppler is asked for pages 1-3 first, and nothing more is
    # rendered until those pages are consumed.
    source = pdfs.blank_pages(tmp_path, 7)
    settings = dataclasses.replace(settings, render_chunk_pages=3)
    calls = []
    real_render = pdf_module._render_chunk
    monkeypatch.setattr(
        pdf_module, "_render_chunk", lambda *args: calls.append(args[3]) or real_render(*args)
    )
    iterator = render_pages(source, tmp_path / "pages", settings)
    assert next(iterator).page_number == 1
    assert calls == [(1, 3)]
    rest = list(iterator)
    assert [page.page_number for page in rest] == [2, 3, 4, 5, 6, 7]
    assert calls == [(1, 3), (4, 6), (7, 7)]


def test_a_gigantic_page_is_rendered_within_the_pixel_cap(settings, tmp_path):
    # A 200 x 200 inch poster page would be 9600 x 9600 px at 48 DPI.
    source = pdfs.blank_pages(tmp_path, 1, width=14400, height=14400)
    settings = dataclasses.replace(settings, max_page_pixels=1_000_000)
    (page,) = render_pages(source, tmp_path / "pages", settings)
    assert page.width * page.height <= settings.max_page_pixels
    assert page_dpi(14400, 14400, settings) == 5


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (pdfs.encrypted, EncryptedPdfError, "password"),
        (pdfs.truncated, CorruptPdfError, "damaged"),
        (lambda d: pdfs.blank_pages(d, 0), EmptyPdfError, "no pages"),
        (lambda d: _write(d / "empty.pdf", b""), EmptyPdfError, "empty"),
        (lambda d: _write(d / "notes.pdf", b"just some text\n" * 10), NotAPdfError, "not a PDF"),
        (lambda d: d / "missing.pdf", NotAPdfError, "no such file"),
    ],
    ids=["encrypted", "corrupt", "no-pages", "empty-file", "not-a-pdf", "missing"],
)
def test_bad_files_raise_a_typed_one_line_error(make, error, words, settings, tmp_path):
    path = make(tmp_path)
    with pytest.raises(error) as raised:
        inspect_pdf(path, settings)
    message = str(raised.value)
    assert words in message
    assert message.startswith(path.name)
    assert "\n" not in message


def test_limits_on_pages_and_size(settings, tmp_path):
    many = pdfs.blank_pages(tmp_path, 5)
    with pytest.raises(PdfTooLargeError, match="5 pages is over the 4-page limit"):
        inspect_pdf(many, dataclasses.replace(settings, max_pages=4))
    big = _write(tmp_path / "big.pdf", b"%PDF-1.4\n" + b"0" * (2 * 2**20))
    with pytest.raises(PdfTooLargeError, match="over the 1 MB limit"):
        inspect_pdf(big, dataclasses.replace(settings, max_file_mb=1))


def test_every_pdf_error_is_a_pdf_error():
    for error in (
        CorruptPdfError,
        EmptyPdfError,
        EncryptedPdfError,
        NotAPdfError,
        PdfTooLargeError,
    ):
        assert issubclass(error, PdfError)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path
