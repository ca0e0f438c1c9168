"""Hostile images and office files: each refused in one line, quickly, leaving nothing in the
index or the conversion cache; documents that ask for the network never reach it.

The files are built by ``tests.documents``; LibreOffice is the real one.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.ingest import office
from rag.ingest.convert import CACHE
from rag.pipeline import Pipeline
from tests import documents


@pytest.fixture
def library(tiny_models, tmp_path) -> Pipeline:
    settings = Settings(data_dir=tmp_path / "data", retriever=str(tiny_models / "colqwen2"), dpi=48)
    return Pipeline(settings)


HTML = b"<html><img src='http://127.0.0.1:9/x.png'></html>"  # LibreOffice would open it
HOSTILE = {
    "bomb.docx": (documents.zip_bomb, "a zip bomb"),
    "laughs.docx": (documents.entity_expansion, "declares XML entities"),
    "escape.docx": (documents.escaping_entry, "outside the package"),
    "cut.docx": (documents.damaged_zip, "its zip package is damaged"),
    "locked.docx": (documents.encrypted, "password-protected"),
    "locked.odt": (documents.encrypted_odf, "password-protected"),
    "page.docx": (lambda p: _write(p, HTML), "not a Word document"),
    "noise.pptx": (lambda p: _write(p, bytes(range(256)) * 40), "not a PowerPoint"),
    "noise.xls": (lambda p: _write(p, b"PK\x03\x04" + bytes(500)), "not an Excel workbook"),
    "noise.rtf": (lambda p: _write(p, b"{\\rtf1 " + bytes(range(256)) * 8), "LibreOffice could"),
    "bomb.png": (documents.decompression_bomb, "100-megapixel limit"),
    "cut.png": (documents.truncated, "damaged (truncated)"),
    "noise.jpg": (lambda p: _write(p, b"\xff\xd8\xff" + bytes(300)), "not a readable image"),
    "notes.txt": (lambda p: _write(p, b"plain words"), "not a type this app reads"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_is_refused_in_one_line_leaving_nothing(library, tmp_path, name):
    make, said = HOSTILE[name]
    path = make(tmp_path / name)
    result = library.add_file(path)
    assert result.status == "refused"
    assert result.error.startswith(f"{name}: ") and said in result.error, result.error
    assert "\n" not in result.error
    assert library.documents() == []
    cache = library.settings.data_dir / CACHE
    assert not cache.exists() or not list(cache.iterdir())


@pytest.fixture
def web() -> Iterator[tuple[str, list[str]]]:
    """A web server on this machine, and the paths asked of it."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()


@pytest.mark.parametrize("namespace", [True, False], ids=["own-network", "profile-only"])
def test_documents_asking_for_the_network_are_converted_without_it(
    library, tmp_path, web, monkeypatch, namespace
):
    if namespace and not office.network_namespaces():
        pytest.skip("this system does not let a process make its own network namespace")
    monkeypatch.setattr(office, "network_namespaces", lambda: namespace)
    url, asked = web
    linked = documents.remote_links(tmp_path / "linked.docx", url)
    query = documents.web_query_sheet(tmp_path / "query.xlsx", url)
    for path in (linked, query):
        result = library.add_file(path)
        assert result.status == "indexed", result.message
    time.sleep(0.5)  # a request on its way would have arrived
    assert asked == []


def test_limits_are_named_a_long_deck_a_wide_sheet_and_a_slow_conversion(tiny_models, tmp_path):
    def pipeline(**limits) -> Pipeline:
        settings = Settings(
            data_dir=tmp_path / "data", retriever=str(tiny_models / "colqwen2"), dpi=48, **limits
        )
        return Pipeline(settings)

    deck = documents.pptx(tmp_path / "long.pptx", [f"Slide {n}" for n in range(500)])
    result = pipeline(max_pages=100).add_file(deck)
    assert result.error == "long.pptx: 500 pages is over the 100-page limit"
    wide = documents.xlsx(tmp_path / "wide.xlsx", {"Wide": [[f"c{n}" for n in range(16_000)]]})
    result = pipeline(max_pages=100).add_file(wide)
    assert result.status == "refused" and "pages is over the 100-page limit" in result.error
    # 300 slides: LibreOffice alone needs well over the second (a 3-slide deck can convert,
    # render and be read within it on a quiet machine)
    other = documents.pptx(tmp_path / "other.pptx", [f"Slide {n}" for n in range(300)])
    result = pipeline(render_timeout_s=1).add_file(other)
    assert result.status == "refused", result.message
    assert result.error.startswith("other.pptx: ") and result.error.endswith(
        "took longer than the 1 s allowed per file (RAG_RENDER_TIMEOUT_S)"
    )
    assert pipeline().documents() == []


def test_a_bad_file_in_a_folder_does_not_stop_the_others(library, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    documents.docx(folder / "a.docx")
    documents.entity_expansion(folder / "b.docx")
    documents.truncated(folder / "c.png")
    documents.pptx(folder / "d.pptx")
    statuses = {r.file: r.status for r in library.add_paths([folder])}
    assert statuses == {
        "a.docx": "indexed",
        "b.docx": "refused",
        "c.png": "refused",
        "d.pptx": "indexed",
    }
