"""The office variants (templates, macro-enabled files, shows, .xlsb, flat OpenDocument)
under the same checks as the documents they vary: hostile ones refused in one line before
LibreOffice runs, genuine ones let through, and LibreOffice's own failures told without a
path of the server.

Every variant read for real is indexed in ``tests/test_formats.py``; the files are made by
``tests.helpers.officefiles`` and ``tests.helpers.xlsb``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import ConversionError
from rag.ingest import office, sandbox
from rag.ingest.convert import CACHE
from rag.ingest.formats import OLE_MAGIC
from rag.pipeline import Pipeline
from tests.helpers import officefiles, xlsb
from tests.helpers.files import write


@pytest.fixture
def pipeline(indexing_settings) -> Pipeline:
    return Pipeline(indexing_settings)


HTML = b"<!DOCTYPE html><html><img src='http://127.0.0.1:9/x.png'></html>"
# A comment long enough to push a document type declaration past the first 4 KB of a part,
# naming what a flat OpenDocument file must start with.
COMMENT = "<!-- " + "office:document " * 400 + "-->"


def _escaping(path: Path) -> Path:
    source = officefiles.ooxml(path.with_suffix(f".source{path.suffix}"))
    officefiles.rewrite(source, path, {}, {"../../outside.txt": b"escaped"})
    source.unlink()
    return path


HOSTILE = {
    "laughs.fodt": (
        officefiles.flat_entity_expansion,
        "laughs.fodt: it declares XML entities, which no genuine office file does "
        "(entity expansion)",
    ),
    "hidden.fodt": (
        lambda p: officefiles.flat_entity_expansion(p, before=COMMENT),
        "hidden.fodt: it declares XML entities",
    ),
    "hidden.docx": (
        lambda p: officefiles.entity_expansion(p, before=COMMENT),
        "hidden.docx: its part word/document.xml declares XML entities",
    ),
    "wide.dotm": (
        lambda p: officefiles.entity_expansion(p, encoding="utf-16"),
        "wide.dotm: its part word/document.xml declares XML entities",
    ),
    "seven.docm": (
        lambda p: officefiles.entity_expansion(p, encoding="utf-7"),
        "seven.docm: its part word/document.xml is written in an encoding no office file uses",
    ),
    "bomb.xlsb": (
        lambda p: officefiles.with_bomb(xlsb.write(p, officefiles.SHEETS)),
        "bomb.xlsb: media/zeros.bin unpacks",
    ),
    "noise.xlsb": (
        lambda p: write(p, bytes(range(256)) * 8),
        "noise.xlsb: named as an Excel workbook, but its content is not one",
    ),
    "locked.xlsm": (
        officefiles.encrypted_ooxml,
        "locked.xlsm: the file is password-protected (remove the password)",
    ),
    "locked.pptm": (
        officefiles.encrypted_ooxml,
        "locked.pptm: the file is password-protected (remove the password)",
    ),
    "locked.ott": (
        officefiles.encrypted_odf,
        "locked.ott: the file is password-protected (remove the password)",
    ),
    "escape.potx": (_escaping, "escape.potx: not a PowerPoint template: it holds a part named"),
    "x.dot": (
        lambda p: write(p, HTML),
        "x.dot: named as a Word template, but its content is an HTML page",
    ),
    "x.fods": (
        lambda p: write(p, HTML),
        "x.fods: named as a flat OpenDocument spreadsheet, but its content is an HTML page",
    ),
    "x.pps": (
        lambda p: write(p, b"PK\x03\x04" + bytes(500)),
        "x.pps: named as a PowerPoint slide show, but its content is a zip archive",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_variant_is_refused_in_one_line_before_libreoffice_runs(
    pipeline, tmp_path, monkeypatch, name
):
    def never(*_args, **_kwargs):
        raise AssertionError("LibreOffice was given a hostile file")

    monkeypatch.setattr(office, "to_pdf", never)
    make, said = HOSTILE[name]
    result = pipeline.add_file(make(tmp_path / name))
    assert result.status == "refused"
    assert result.error.startswith(said), result.error
    assert "\n" not in result.error and str(tmp_path) not in result.error
    assert pipeline.documents() == []
    cache = pipeline.settings.data_dir / CACHE
    assert not cache.exists() or not list(cache.iterdir())


def test_genuine_variants_pass_the_checks(tmp_path):
    """The variants made without LibreOffice: retyped OOXML packages, .xlsb, drawings."""
    made = [officefiles.ooxml(tmp_path / f"file{e}") for e in officefiles.MAIN_TYPES]
    made.append(xlsb.write(tmp_path / "book.xlsb", officefiles.SHEETS))
    made += [
        officefiles.drawing(tmp_path / f"drawing{e}", officefiles.SLIDES) for e in (".odg", ".fodg")
    ]
    for path in made:
        office.check(path, path.name)  # raises if refused


def test_an_xml_prolog_is_read_to_its_root_element_and_no_further(tmp_path):
    """A long comment before the root is no document type; a prolog of a megabyte is refused."""
    root = (
        f'<office:document xmlns:office="{officefiles._NS["office"]}" '
        'office:mimetype="application/vnd.oasis.opendocument.text">'
        "<office:body><office:text/></office:body></office:document>"
    )
    plain = tmp_path / "plain.fodt"
    plain.write_text(f'<?xml version="1.0"?>{COMMENT}{root}', encoding="utf-8")
    office.check(plain, "plain.fodt")
    huge = tmp_path / "huge.fodt"
    huge.write_text(f'<?xml version="1.0"?><!-- office:document {"x" * office.MAX_PROLOG} -->')
    with pytest.raises(ConversionError, match=r"huge\.fodt: it holds over 1 MB before its first"):
        office.check(huge, "huge.fodt")


@pytest.mark.office
def test_a_file_libreoffice_cannot_read_is_refused_naming_the_file_only(pipeline, tmp_path):
    result = pipeline.add_file(write(tmp_path / "noise.pps", OLE_MAGIC + bytes(1000)))
    assert result.status == "refused"
    assert result.error == (
        "noise.pps: LibreOffice could not read it: damaged, password-protected or not a "
        "PowerPoint slide show (Error: source file could not be loaded)"
    )


def test_libreoffice_errors_lose_the_scratch_folder_and_the_copy_name():
    work = Path("/tmp/soffice-abc123")
    stderr = (
        "Warning: failed to launch javaldx\n"
        f"Error: Please verify input parameters... (SfxBaseModel::impl_store "
        f"<{work.as_uri()}/out/document.pdf> failed: 0x81a) reading {work}/document.pps\n"
    )
    error = office._failure("deck.pps", sandbox.Result(1, "", stderr), work, "document.pps")
    message = str(error)
    assert message.startswith("deck.pps: LibreOffice could not read it: ")
    assert "soffice-abc123" not in message and "/tmp" not in message, message
    assert "reading deck.pps" in message and "\n" not in message
