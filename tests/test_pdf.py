"""PDF -> page images through the real poppler, and every bad input refused in one line."""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import pytest
from PIL import Image

from rag.config import MAX_PAGE_WORKERS, Settings, page_workers
from rag.errors import (
    ConfigError,
    CorruptPdfError,
    EmptyPdfError,
    EncryptedPdfError,
    NotAPdfError,
    PdfError,
    PdfTooLargeError,
)
from rag.ingest import pdf as pdf_module
from rag.ingest.pdf import inspect_pdf, page_dpi, render_pages
from tests.helpers import SAMPLES, pdfs
from tests.helpers.files import truncated, write


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
    source = pdfs.blank_pages(tmp_path / "blank.pdf", 7)
    settings = dataclasses.replace(settings, render_chunk_pages=3, page_workers=1)
    calls = []
    real_render = pdf_module._render_chunk
    monkeypatch.setattr(
        pdf_module, "_render_chunk", lambda *args: calls.append(args[3][:2]) or real_render(*args)
    )
    iterator = render_pages(source, tmp_path / "pages", settings)
    assert next(iterator).page_number == 1
    assert calls == [(1, 3)]
    rest = list(iterator)
    assert [page.page_number for page in rest] == [2, 3, 4, 5, 6, 7]
    assert calls == [(1, 3), (4, 6), (7, 7)]


def test_page_workers_render_chunks_at_once_and_hand_pages_out_in_order(
    settings, tmp_path, monkeypatch
):
    source = SAMPLES / "product_slides.pdf"
    serial = list(render_pages(source, tmp_path / "serial", settings))
    running, most = [0], [0]
    lock = threading.Lock()
    real_render = pdf_module._render_chunk

    def render(*args):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)  # long enough for the other workers to start theirs
        try:
            return real_render(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(pdf_module, "_render_chunk", render)
    settings = dataclasses.replace(settings, render_chunk_pages=1, page_workers=3)
    parallel = list(render_pages(source, tmp_path / "parallel", settings))
    assert most[0] >= 2
    assert [p.page_number for p in parallel] == [p.page_number for p in serial] == [1, 2, 3]
    for one, other in zip(serial, parallel, strict=True):
        with Image.open(one.path) as first, Image.open(other.path) as second:
            assert first.tobytes() == second.tobytes()
    leftovers = {path.name for path in (tmp_path / "parallel").iterdir()}
    assert leftovers == {p.path.name for p in parallel}  # the pages, no raw renders


def test_a_bad_page_among_parallel_chunks_refuses_the_file_and_leaves_no_raw_renders(
    settings, tmp_path
):
    sizes = [(612, 792)] * 5 + [(1, 1)] + [(612, 792)] * 4
    source = pdfs.blank_pages(tmp_path / "bad.pdf", sizes)
    settings = dataclasses.replace(settings, render_chunk_pages=2, page_workers=3)
    out = tmp_path / "pages"
    with pytest.raises(EmptyPdfError, match="page 6 renders to"):
        list(render_pages(source, out, settings))
    assert not list(out.glob("render-*")) and not list(out.rglob("*.ppm"))
    assert not any(t.name.startswith("prepare") for t in threading.enumerate())


def test_page_workers_default_to_half_the_cores_and_refuse_negatives():
    cores = len(os.sched_getaffinity(0))
    assert 1 <= page_workers(Settings()) <= max(1, min(MAX_PAGE_WORKERS, cores))
    assert page_workers(Settings(page_workers=5)) == 5
    with pytest.raises(ConfigError, match="RAG_PAGE_WORKERS"):
        Settings.from_env({"RAG_PAGE_WORKERS": "-2"})


def test_a_gigantic_page_is_rendered_within_the_pixel_cap(settings, tmp_path):
    # A 200 x 200 inch poster page would be 9600 x 9600 px at 48 DPI.
    source = pdfs.blank_pages(tmp_path / "poster.pdf", [(14400, 14400)])
    settings = dataclasses.replace(settings, max_page_pixels=1_000_000)
    (page,) = render_pages(source, tmp_path / "pages", settings)
    assert page.width * page.height <= settings.max_page_pixels
    assert page_dpi(14400, 14400, settings) == 5


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (
            lambda d: pdfs.encrypted(d / "locked.pdf", source=pdfs.EXPENSE_FORM),
            EncryptedPdfError,
            "password",
        ),
        (
            lambda d: truncated(d / "broken.pdf", pdfs.SOURCE, keep=900),
            CorruptPdfError,
            "damaged",
        ),
        (lambda d: pdfs.blank_pages(d / "blank.pdf", 0), EmptyPdfError, "no pages"),
        (lambda d: write(d / "empty.pdf", b""), EmptyPdfError, "empty"),
        (
            lambda d: write(d / "notes.pdf", b"just some text\n" * 10),
            NotAPdfError,
            "not a PDF",
        ),
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
    many = pdfs.blank_pages(tmp_path / "blank.pdf", 5)
    with pytest.raises(PdfTooLargeError, match="5 pages is over the 4-page limit"):
        inspect_pdf(many, dataclasses.replace(settings, max_pages=4))
    big = write(tmp_path / "big.pdf", b"%PDF-1.4\n" + b"0" * (2 * 2**20))
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
