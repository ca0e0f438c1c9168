"""Hostile images and office files: each refused in one line, quickly, leaving nothing in the
index or the conversion cache; documents that ask for the network never reach it.

The files are built by ``tests.helpers``; LibreOffice is the real one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.ingest import office
from rag.ingest.convert import CACHE
from rag.pipeline import Pipeline
from tests.helpers import images, officefiles
from tests.helpers.files import truncated, write
from tests.helpers.web import recording_server


@pytest.fixture
def pipeline(indexing_settings) -> Pipeline:
    return Pipeline(indexing_settings)


HTML = b"<html><img src='http://127.0.0.1:9/x.png'></html>"  # LibreOffice would open it
HOSTILE = {
    "bomb.docx": (officefiles.zip_bomb, "a zip bomb"),
    "laughs.docx": (officefiles.entity_expansion, "declares XML entities"),
    "escape.docx": (officefiles.escaping_entry, "outside the package"),
    "cut.docx": (officefiles.damaged_zip, "its zip package is damaged"),
    "locked.docx": (officefiles.encrypted_docx, "password-protected"),
    "locked.odt": (officefiles.encrypted_odf, "password-protected"),
    "page.docx": (lambda p: write(p, HTML), "named as a Word document, but its content is an HTML"),
    "noise.pptx": (lambda p: write(p, bytes(range(256)) * 40), "named as a PowerPoint"),
    "noise.xls": (lambda p: write(p, b"PK\x03\x04" + bytes(500)), "its content is a zip archive"),
    "noise.rtf": (lambda p: write(p, b"{\\rtf1 " + bytes(range(256)) * 8), "LibreOffice could"),
    "bomb.png": (images.decompression_bomb, "100-megapixel limit"),
    "cut.png": (lambda p: truncated(p, _photo(p)), "damaged (truncated)"),
    "noise.jpg": (lambda p: write(p, b"\xff\xd8\xff" + bytes(300)), "not a readable image"),
    "setup.exe": (lambda p: write(p, b"MZ a program"), "not a type this app reads"),
}

CONVERTED = {"noise.rtf"}  # refused by LibreOffice itself; the others before it runs


def _photo(path: Path) -> bytes:
    """The bytes of a whole picture of ``path``'s type."""
    whole = images.photo(path.with_suffix(f".whole{path.suffix}"))
    data = whole.read_bytes()
    whole.unlink()
    return data


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.office) if name in CONVERTED else name
        for name in sorted(HOSTILE)
    ],
)
def test_a_hostile_file_is_refused_in_one_line_leaving_nothing(pipeline, tmp_path, name):
    make, said = HOSTILE[name]
    path = make(tmp_path / name)
    result = pipeline.add_file(path)
    assert result.status == "refused"
    assert result.error.startswith(f"{name}: ") and said in result.error, result.error
    assert "\n" not in result.error
    assert pipeline.documents() == []
    cache = pipeline.settings.data_dir / CACHE
    assert not cache.exists() or not list(cache.iterdir())


@pytest.fixture
def web() -> Iterator[tuple[str, Callable[[], list[str]]]]:
    with recording_server() as served:
        yield served


@pytest.mark.office
@pytest.mark.parametrize("namespace", [True, False], ids=["own-network", "profile-only"])
def test_documents_asking_for_the_network_are_converted_without_it(
    pipeline, tmp_path, web, monkeypatch, namespace
):
    if namespace and not office.network_namespaces():
        pytest.skip("this system does not let a process make its own network namespace")
    monkeypatch.setattr(office, "network_namespaces", lambda: namespace)
    url, asked = web
    linked = officefiles.remote_links(tmp_path / "linked.docx", url)
    query = officefiles.web_query_sheet(tmp_path / "query.xlsx", url)
    for path in (linked, query):
        result = pipeline.add_file(path)
        assert result.status == "indexed", result.message
    assert asked() == []  # not even one still on its way


@pytest.mark.office
def test_limits_are_named_a_long_deck_a_wide_sheet_and_a_slow_conversion(
    indexing_settings, tmp_path
):
    def limited(**limits) -> Pipeline:
        return Pipeline(dataclasses.replace(indexing_settings, **limits))

    deck = officefiles.pptx(tmp_path / "long.pptx", [f"Slide {n}" for n in range(500)])
    result = limited(max_pages=100).add_file(deck)
    assert result.error == "long.pptx: 500 pages is over the 100-page limit"
    wide = officefiles.xlsx(tmp_path / "wide.xlsx", {"Wide": [[f"c{n}" for n in range(16_000)]]})
    result = limited(max_pages=100).add_file(wide)
    assert result.status == "refused" and "pages is over the 100-page limit" in result.error
    # 300 slides: LibreOffice alone needs well over the second (a 3-slide deck can convert,
    # render and be read within it on a quiet machine)
    other = officefiles.pptx(tmp_path / "other.pptx", [f"Slide {n}" for n in range(300)])
    result = limited(render_timeout_s=1).add_file(other)
    assert result.status == "refused", result.message
    assert result.error.startswith("other.pptx: ") and result.error.endswith(
        "took longer than the 1 s allowed per file (RAG_RENDER_TIMEOUT_S)"
    )
    assert limited().documents() == []


@pytest.mark.office
def test_a_bad_file_in_a_folder_does_not_stop_the_others(pipeline, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    officefiles.docx(folder / "a.docx")
    officefiles.entity_expansion(folder / "b.docx")
    truncated(folder / "c.png", _photo(folder / "c.png"))
    officefiles.pptx(folder / "d.pptx")
    statuses = {r.file: r.status for r in pipeline.add_paths([folder])}
    assert statuses == {
        "a.docx": "indexed",
        "b.docx": "refused",
        "c.png": "refused",
        "d.pptx": "indexed",
    }
