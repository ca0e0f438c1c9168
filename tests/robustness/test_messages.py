"""What a person reads about a file: no folder of the server in any message, sentences that
read as sentences, and a blank page called blank (not damage) when it is what the file holds."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from rag.pipeline import Pipeline
from tests.helpers import images, officefiles
from tests.helpers.files import write


@pytest.fixture
def pipeline(indexing_settings) -> Pipeline:
    return Pipeline(dataclasses.replace(indexing_settings, hybrid="text"))


def test_no_refusal_names_a_folder_of_the_server(pipeline, tmp_path):
    folder = tmp_path / "uploads" / "deep-folder"
    made = [
        write(folder / "broken.png", b"\x89PNG\r\n\x1a\n" + b"not an image at all" * 40),
        write(folder / "cut.jpg", images.photo(tmp_path / "whole.jpg").read_bytes()[:300]),
        write(folder / "notes.rtf", b"plain words, no RTF header"),
        write(folder / "memo.docx", b"<html><body>a web page</body></html>"),
        write(folder / "random.xls", bytes(range(256)) * 8),
    ]
    for path in made:
        result = pipeline.add_file(path)
        assert result.status == "refused", result
        assert result.error.startswith(f"{path.name}: "), result.error
        for secret in (str(tmp_path), "uploads", "deep-folder", str(pipeline.settings.data_dir)):
            assert secret not in result.error, result.error
    assert pipeline.documents() == []


def test_a_file_that_is_not_what_its_name_says_is_told_what_it_is(pipeline, tmp_path):
    said = {
        "notes.rtf": (b"plain words", "named as an RTF document, but its content is plain text"),
        "memo.docx": (b"<!DOCTYPE html><p>x</p>", "named as a Word document, but its content is"),
        "deck.pptx": (
            b"%PDF-1.7\n",
            "named as a PowerPoint presentation, but its content is a PDF",
        ),
        "book.xls": (
            b"PK\x03\x04" + bytes(60),
            "named as an Excel workbook, but its content is a zip",
        ),
    }
    for name, (data, message) in said.items():
        result = pipeline.add_file(write(tmp_path / name, data))
        assert result.status == "refused" and message in result.error, result.error
        assert "(its content is not)" not in result.error


@pytest.mark.office
def test_a_blank_page_is_what_a_converted_file_holds_not_damage(pipeline, tmp_path):
    import docx
    import openpyxl
    import pptx

    docx.Document().save(tmp_path / "empty.docx")
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank layout: nothing on the slide
    slide.notes_slide.notes_text_frame.text = "Only the speaker sees this."
    deck.save(tmp_path / "notes-only.pptx")
    book = openpyxl.Workbook()
    book.active.title = "Empty"
    book.create_sheet("Filled").append(["Kestrel", 12])
    book.save(tmp_path / "one-empty-sheet.xlsx")
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    officefiles.docx(tmp_path / "memo.docx")
    warnings = {}
    for path in sorted(tmp_path.iterdir()):
        result = pipeline.add_file(path)
        assert result.status == "indexed", result.message
        warnings[path.name] = result.warnings
    assert warnings["empty.docx"] == ("page 1 is blank",)
    assert warnings["notes-only.pptx"] == ("page 1 is blank",)
    assert warnings["clear.png"] == ("page 1 is blank",)
    assert warnings["memo.docx"] == ()
    assert all("damaged" not in note for notes in warnings.values() for note in notes)
    assert pipeline.search("Kestrel")[0].citation.startswith("[one-empty-sheet.xlsx ")
