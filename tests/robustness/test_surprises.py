"""One file's surprise never costs another: an error no check foresaw, in any stage of one file,
is that file's one-line refusal (its traceback in the log), the batch goes on, and nothing of
the file enters the index. Through the engine, the CLI, and the web upload's named API."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from gradio_client import Client, handle_file

import app
import rag.ingest
from rag.config import Settings
from rag.pipeline import Pipeline
from tests.helpers import SAMPLES
from tests.helpers.servers import app_env, listed, running_app
from tests.helpers.zipcrypto import encrypted_zip

pytestmark = pytest.mark.models

# A password-protected zip renamed .docx: its parts are listed, then reading one raises
# zipfile's RuntimeError ("... is encrypted, password required for extraction").
PARTS = {
    "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
    "word/document.xml": b'<?xml version="1.0"?><w:document/>',
}


@pytest.fixture
def folder(tmp_path):
    """a_locked.docx (ZipCrypto), b_report.pdf, c_slides.pdf: the surprise comes first."""
    files = tmp_path / "inbox"
    files.mkdir()
    encrypted_zip(files / "a_locked.docx", PARTS)
    shutil.copy(SAMPLES / "annual_report.pdf", files / "b_report.pdf")
    shutil.copy(SAMPLES / "product_slides.pdf", files / "c_slides.pdf")
    return files


@pytest.fixture
def pipeline(tiny_models, tmp_path):
    settings = Settings(
        data_dir=tmp_path / "data", retriever=str(tiny_models / "colqwen2"), dpi=48, top_k=2
    )
    return Pipeline(settings)


def test_a_zipcrypto_docx_is_refused_in_one_line_and_the_files_after_it_are_indexed(
    folder, pipeline
):
    results = list(pipeline.add_paths([folder]))
    assert [(r.file, r.status) for r in results] == [
        ("a_locked.docx", "refused"),
        ("b_report.pdf", "indexed"),
        ("c_slides.pdf", "indexed"),
    ]
    assert results[0].message == (
        "a_locked.docx: refused: its zip package is password-protected, which no office "
        "file's own password does: remove the password"
    )
    assert sorted(d.name for d in pipeline.documents()) == ["b_report.pdf", "c_slides.pdf"]


def test_an_unforeseen_error_in_a_stage_refuses_that_file_only_and_logs_its_traceback(
    folder, pipeline, monkeypatch, caplog
):
    real = rag.ingest.prepare

    def surprising(sources, name, *args, **kwargs):
        if name == "b_report.pdf":
            raise KeyError("a stage nobody tested")
        return real(sources, name, *args, **kwargs)

    monkeypatch.setattr(rag.ingest, "prepare", surprising)
    (folder / "a_locked.docx").unlink()
    with caplog.at_level(logging.ERROR, logger="rag.library"):
        results = list(pipeline.add_paths([folder]))
    assert [(r.file, r.status) for r in results] == [
        ("b_report.pdf", "refused"),
        ("c_slides.pdf", "indexed"),
    ]
    assert results[0].error == "b_report.pdf: could not be read (KeyError: 'a stage nobody tested')"
    assert [d.name for d in pipeline.documents()] == ["c_slides.pdf"]
    (record,) = [r for r in caplog.records if "b_report.pdf" in r.getMessage()]
    assert record.exc_info and record.exc_info[0] is KeyError  # the traceback is in the log
    staging = pipeline.settings.data_dir / "index" / ".staging"
    assert not any(staging.iterdir())  # nothing of the refused file is left behind


def test_an_error_after_rendering_began_leaves_no_trace_of_the_file(pipeline, monkeypatch):
    """Failing mid-way (its pages rendered and encoded, its words being read) adds nothing."""
    import rag.ingest

    def broken(self, images):
        raise ValueError("the words' reader broke")

    monkeypatch.setattr(rag.ingest.Prepared, "words", broken)
    result = pipeline.add_file(SAMPLES / "annual_report.pdf")
    assert result.status == "refused"
    assert result.error.endswith("(ValueError: the words' reader broke)")
    assert pipeline.documents() == []
    monkeypatch.undo()
    assert pipeline.add_file(SAMPLES / "annual_report.pdf").status == "indexed"  # the next try


def test_the_cli_reports_the_refusal_exits_0_and_indexes_the_rest(
    folder, tiny_models, tmp_path, capsys
):
    common = [f"--retriever={tiny_models / 'colqwen2'}", f"--data-dir={tmp_path / 'cli'}"]
    assert app.main(["index", str(folder), "--json", *common]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["file"], r["status"]) for r in lines] == [
        ("a_locked.docx", "refused"),
        ("b_report.pdf", "indexed"),
        ("c_slides.pdf", "indexed"),
    ]
    assert "password" in lines[0]["error"]


@pytest.mark.processes
def test_the_web_upload_refuses_the_surprise_and_indexes_the_rest(folder, tiny_models, tmp_path):
    env = app_env(tiny_models, tmp_path / "data")
    with running_app(env, log=tmp_path / "server.log") as url:
        client = Client(url, verbose=False)
        files = [handle_file(str(path)) for path in sorted(folder.iterdir())]
        status, _ = client.predict(files, api_name="/index")
        assert "a_locked.docx: refused: " in status and "password" in status
        assert "b_report.pdf: indexed, 3 pages" in status
        assert "c_slides.pdf: indexed" in status
        assert sorted(listed(client)) == ["b_report.pdf", "c_slides.pdf"]
