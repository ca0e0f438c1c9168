"""Any document in: images and office files become PDFs and are indexed as PDFs are, with
their words, their pages (or slides) cited, and each conversion done once.

Office files are converted by the real LibreOffice (installed by ``make test``); the files
are made by ``tests.helpers.officefiles``, one of every office type. Hostile ones are in
``tests/robustness/test_documents.py`` and ``tests/robustness/test_office_variants.py``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

import app
from rag.citations import label
from rag.ingest import office
from rag.ingest.convert import CACHE
from rag.ingest.formats import SUPPORTED, described, kind
from rag.pipeline import Pipeline
from tests.helpers import SAMPLES, images, officefiles


@pytest.fixture(scope="module")
def office_files(tmp_path_factory) -> dict[str, Path]:
    return officefiles.every_office_file(tmp_path_factory.mktemp("office"))


@pytest.fixture
def pipeline(indexing_settings) -> Pipeline:
    """An empty pipeline that searches pictures and words."""
    return Pipeline(dataclasses.replace(indexing_settings, hybrid="text"))


# How many pages each kind of file has, and which holds its codeword.
PAGES = {".docx": 2, ".pptx": 3, ".xlsx": 2}
CODEWORD_PAGE = {".docx": 1, ".pptx": 2, ".xlsx": 2}


def cited_as(ending: str) -> str:
    """What a citation calls the pages of an office file of type ``ending``."""
    like = officefiles.LIKE[ending]
    if like == ".xlsx":
        return "sheet "  # each sheet printed on one page
    if like == ".pptx" and ending not in officefiles.DRAWINGS:
        return "slide "  # decks, shows and their templates
    return "p."


@pytest.mark.office
def test_every_office_type_is_indexed_with_its_words_and_cited_by_page_or_slide(
    pipeline, office_files
):
    assert set(office_files) == {e for e in SUPPORTED if kind("file" + e) == "office"}
    with ThreadPoolExecutor(2) as pool:  # two files at a time: half the time of one by one
        results = dict(
            zip(office_files, pool.map(pipeline.add_file, office_files.values()), strict=True)
        )
    for ending, path in office_files.items():
        result, like = results[ending], officefiles.LIKE[ending]
        assert result.status == "indexed", result.message
        assert result.pages == PAGES[like], ending
        top = pipeline.search(officefiles.codeword(ending))[0]  # among every file's pages
        page = CODEWORD_PAGE[like]
        assert (top.doc_id, top.page_number) == (result.doc_id, page), ending
        assert top.citation == f"[{path.name} {cited_as(ending)}{page}]"
    assert len(pipeline.documents()) == len(office_files)


def test_images_become_pages_upright_and_in_rgb(pipeline, tmp_path):
    made = {
        "plain.png": images.photo(tmp_path / "plain.png"),
        "plain.jpg": images.photo(tmp_path / "plain.jpg"),
        "turned.jpg": images.photo(tmp_path / "turned.jpg", orientation=6),
        "cmyk.jpg": images.photo(tmp_path / "cmyk.jpg", mode="CMYK"),
        "picture.webp": images.photo(tmp_path / "picture.webp"),
        "picture.bmp": images.photo(tmp_path / "picture.bmp"),
        "deep.png": images.sixteen_bit(tmp_path / "deep.png"),
        "palette.png": images.palette_with_transparency(tmp_path / "palette.png"),
        "scan.tiff": images.frames(tmp_path / "scan.tiff", 3),
        "moving.gif": images.frames(tmp_path / "moving.gif", 3, duration=100, loop=0),
    }
    pages = {}
    for name, path in made.items():
        result = pipeline.add_file(path)
        assert result.status == "indexed", result.message
        pages[name] = result.pages
        assert Image.open(pipeline.index.page_image(result.doc_id, 1)).mode == "RGB"
    assert pages == {**dict.fromkeys(made, 1), "scan.tiff": 3}  # every frame; a GIF's first
    # The phone held sideways: stored 800 x 600 with the band on top, EXIF says turn it.
    turned = page_of(pipeline, "turned.jpg")
    assert turned.width < turned.height  # upright: portrait
    right, left = turned.getpixel((turned.width - 3, 50)), turned.getpixel((3, 50))
    assert sum(right) < 150 < sum(left)  # the band now runs down the right-hand side
    plain = page_of(pipeline, "plain.jpg")
    assert plain.width > plain.height and sum(plain.getpixel((plain.width // 2, 3))) < 150
    # transparency over white; the 16-bit ramp keeps its range in 8 bits
    assert page_of(pipeline, "palette.png").getpixel((100, 40))[:3] != (0, 0, 0)
    deep = page_of(pipeline, "deep.png").convert("L")
    assert deep.getpixel((0, 0)) < 40 and deep.getpixel((deep.width - 1, deep.height - 1)) > 200


def page_of(pipeline: Pipeline, name: str, number: int = 1) -> Image.Image:
    document = pipeline.find(name)
    with Image.open(pipeline.index.page_image(document.doc_id, number)) as image:
        return image.convert("RGB")


@pytest.mark.office
def test_a_folder_of_images_is_one_document_only_when_asked(tiny_models, tmp_path, capsys):
    folder = tmp_path / "whiteboard"
    folder.mkdir()
    for number in range(3):
        images.photo(folder / f"photo-{number}.jpg", size=(400 + 100 * number, 300))
    officefiles.docx(folder / "notes.docx")
    common = [f"--retriever={tiny_models / 'colqwen2'}", f"--data-dir={tmp_path / 'data'}"]
    assert app.main(["index", str(folder), "--as-one", "Whiteboard", "--json", *common]) == 0
    records = {r["file"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert records["notes.docx"]["status"] == records["Whiteboard"]["status"] == "indexed"
    assert records["Whiteboard"]["pages"] == 3 and len(records) == 2
    # without --as-one, each image is its own document; --types narrows what a folder gives
    assert app.main(["index", str(folder), "--types", "jpg", "--data-dir", str(tmp_path / "b"),
                     f"--retriever={tiny_models / 'colqwen2'}"]) == 0  # fmt: skip
    said = capsys.readouterr()
    assert said.out.count(": indexed, 1 page") == 3 and "notes.docx" not in said.out
    assert "not of the types indexed, skipped: notes.docx" in said.err
    with pytest.raises(SystemExit):
        app.main(["index", str(folder), "--types", "exe", *common])
    assert "unsupported type 'exe'" in capsys.readouterr().err


@pytest.mark.office
def test_a_conversion_is_done_once(pipeline, office_files, monkeypatch):
    first = pipeline.add_file(office_files[".pptx"])
    cached = pipeline.settings.data_dir / CACHE / f"{first.doc_id}.pdf"
    assert cached.is_file()
    pipeline.delete(first.doc_id)

    def never(*_args, **_kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(office, "to_pdf", never)
    again = pipeline.add_file(office_files[".pptx"])
    assert again.status == "indexed" and again.doc_id == first.doc_id
    assert not list((pipeline.settings.data_dir / CACHE).glob(".*"))  # no half-written PDF


def test_without_libreoffice_office_files_are_refused_and_the_rest_still_work(
    pipeline, tmp_path, monkeypatch
):
    monkeypatch.setattr(office, "soffice", lambda: None)
    folder = tmp_path / "mixed"
    folder.mkdir()
    officefiles.docx(folder / "a-memo.docx")
    images.photo(folder / "b-photo.png")
    (folder / "c-report.pdf").write_bytes((SAMPLES / "annual_report.pdf").read_bytes())
    results = {r.file: r for r in pipeline.add_paths([folder])}
    refused = results["a-memo.docx"]
    assert refused.status == "refused"
    assert refused.error == (
        "a-memo.docx: LibreOffice is not installed, so office files cannot be read "
        f"(apt-get install -y {office.PACKAGES})"
    )
    assert results["b-photo.png"].status == results["c-report.pdf"].status == "indexed"
    assert len(pipeline.documents()) == 2


@pytest.mark.office
def test_two_conversions_at_once_each_in_their_own_profile(pipeline, office_files):
    results = {}

    def add(ending: str) -> None:
        results[ending] = pipeline.add_file(office_files[ending])

    threads = [threading.Thread(target=add, args=(e,)) for e in (".docx", ".xlsx")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {e: r.status for e, r in results.items()} == {".docx": "indexed", ".xlsx": "indexed"}


def test_types_and_labels():
    assert described("PDF,docx, .png") == (".pdf", ".docx", ".png")
    assert described("md,eml,xlsm") == (".md", ".eml", ".xlsm")
    with pytest.raises(ValueError, match="unsupported type 'exe'"):
        described("pdf,exe")
    assert label("Deck.PPTX", 4, "slide") == "[Deck.PPTX slide 4]"
    assert label("scan.tiff", 2) == "[scan.tiff p.2]"


@pytest.mark.office
def test_a_workbook_whose_sheets_span_pages_is_cited_by_page(pipeline, tmp_path):
    rows = [[f"row {n}", n] for n in range(400)]  # 400 rows: several printed pages
    long = officefiles.xlsx(tmp_path / "ledger.xlsx", {"Ledger": rows, "Notes": [["Hopper"]]})
    result = pipeline.add_file(long)
    assert result.pages > 2
    top = pipeline.search("Hopper", docs=[result.doc_id])[0]
    assert top.citation == f"[ledger.xlsx p.{result.pages}]"


@pytest.mark.office
def test_on_qdrant_a_deck_is_found_by_its_words_and_cited_by_slide(indexing_settings, tmp_path):
    settings = dataclasses.replace(indexing_settings, hybrid="text", index="qdrant::memory:")
    pipeline = Pipeline(settings)
    result = pipeline.add_file(officefiles.pptx(tmp_path / "deck.pptx"))
    assert result.status == "indexed" and result.pages == 3
    (top, *_) = pipeline.search("Kestrel hiring")
    assert top.citation == "[deck.pptx slide 3]"
