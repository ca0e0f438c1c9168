"""Asking within documents and tags, from the CLI and the Python API: tags set at indexing,
changed later, listed, used as a scope; documents named by id or exact name; every bad scope,
tag or name refused in one line with nothing changed."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

import app
from rag.config import Settings
from rag.errors import AmbiguousNameError, DocumentNotFoundError, TagError
from rag.pipeline import Pipeline
from tests.helpers import SAMPLES

pytestmark = pytest.mark.models


def cli_in(data: Path, tiny_models, capsys: pytest.CaptureFixture | None = None):
    """``run(*args)``: app.py's CLI in this process over ``data``, at 36 DPI: (exit code,
    stdout, stderr)."""
    common = [f"--retriever={tiny_models / 'colqwen2'}", f"--data-dir={data}"]

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RAG_DPI", "36")
            if capsys is not None:
                code = app.main([*args, *common])
                out, err = capsys.readouterr()
                return code, out, err
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = app.main([*args, *common])
            return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def cli(tiny_models, tmp_path, capsys):
    """``cli(*args)`` runs app.py in this process over tmp_path/data: (exit code, stdout,
    stderr)."""
    return cli_in(tmp_path / "data", tiny_models, capsys)


@pytest.fixture(scope="module")
def three_documents(tiny_models, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A data folder with three documents indexed through the CLI, once for the module: the
    folder and their ids (see ``indexed``)."""
    root = tmp_path_factory.mktemp("three-documents")
    cli = cli_in(root / "data", tiny_models)
    folder = root / "inputs"
    (folder / "other").mkdir(parents=True)
    shutil.copy(SAMPLES / "annual_report.pdf", folder / "report.pdf")
    shutil.copy(SAMPLES / "product_slides.pdf", folder / "slides.pdf")
    same_name = folder / "other" / "report.pdf"  # other bytes, the same name
    same_name.write_bytes((SAMPLES / "expense_form.pdf").read_bytes())
    code, out, _ = cli(
        "index", str(folder / "report.pdf"), "--json", "--tag", "Finance", "--tag", "2024"
    )
    assert code == 0
    report = json.loads(out)["doc_id"]
    code, out, _ = cli("index", str(folder / "slides.pdf"), "--json", "--tag", "2024")
    slides = json.loads(out)["doc_id"]
    code, out, _ = cli("index", str(same_name), "--json")
    form = json.loads(out)["doc_id"]
    return root / "data", {"report": report, "slides": slides, "form": form}


@pytest.fixture
def indexed(tmp_path, three_documents) -> dict[str, str]:
    """The ids of three documents indexed through the CLI, in this test's own copy of the
    data folder (``cli`` works on it): report.pdf (tagged finance and 2024), slides.pdf
    (2024), and another file also named report.pdf (untagged): its name is ambiguous."""
    data, ids = three_documents
    shutil.copytree(data, tmp_path / "data")
    return ids


def listed(cli, *options: str) -> dict[str, list[str]]:
    code, out, _ = cli("list", "--json", *options)
    assert code == 0
    return {record["doc_id"]: record["tags"] for record in map(json.loads, out.splitlines())}


def asked(cli, *options: str) -> set[str]:
    code, out, err = cli("ask", "revenue?", "--json", "--no-answer", "--top-k", "10", *options)
    assert code == 0, err
    return {hit["doc_id"] for hit in json.loads(out)["hits"]}


def test_tags_are_set_at_indexing_listed_changed_and_scoped(cli, indexed):
    report, slides, form = indexed["report"], indexed["slides"], indexed["form"]
    assert listed(cli) == {report: ["2024", "finance"], slides: ["2024"], form: []}
    assert set(listed(cli, "--tag", "finance")) == {report}
    assert set(listed(cli, "--tag", "FINANCE", "--tag", "2024")) == {report, slides}  # any
    assert asked(cli) == {report, slides, form}
    assert asked(cli, "--tag", "finance") == {report}
    assert asked(cli, "--tag", "2024") == {report, slides}
    assert asked(cli, "--doc", slides) == {slides}
    assert asked(cli, "--doc", "slides.pdf", "--tag", "finance") == {report, slides}

    code, out, _ = cli("tag", slides, "--add", "Legal", "--remove", "2024")
    assert code == 0 and out.strip() == f"slides.pdf ({slides}): tags: legal"
    assert listed(cli)[slides] == ["legal"]
    assert asked(cli, "--tag", "legal") == {slides}
    # indexing a file again with a tag adds it to the document already there
    code, out, _ = cli("index", str(SAMPLES / "product_slides.pdf"), "--json", "--tag", "deck")
    assert json.loads(out)["status"] == "skipped"
    assert listed(cli)[slides] == ["deck", "legal"]


def test_documents_are_named_by_id_or_exact_name_and_ambiguity_is_refused(cli, indexed):
    code, _, err = cli("delete", "report.pdf")  # two documents carry this name
    assert code == 1
    assert err.strip().startswith("error: 2 documents are named 'report.pdf' (")
    assert indexed["report"] in err and indexed["form"] in err and "use an id" in err
    code, _, err = cli("ask", "x?", "--doc", "report.pdf")
    assert code == 1 and "use an id" in err
    assert len(listed(cli)) == 3  # nothing changed
    code, out, _ = cli("delete", "slides.pdf")  # unique: deleted by name
    assert code == 0 and out.strip() == f"deleted slides.pdf ({indexed['slides']})"
    code, out, _ = cli("delete", indexed["form"])  # by id
    assert code == 0
    code, out, _ = cli("delete", "report.pdf")  # unique now
    assert code == 0 and listed(cli) == {}


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["ask", "x?", "--doc", "nope.pdf"], "error: no document with the id or name 'nope.pdf'"),
        (["ask", "x?", "--tag", "unused"], "error: no document is tagged 'unused'"),
        (["ask", "x?", "--tag", "two words"], "error: bad tag 'two words'"),
        (["tag", "slides.pdf", "--add", "a/b"], "error: bad tag 'a/b'"),
        (["tag", "nope.pdf", "--add", "x"], "error: no document with the id or name 'nope.pdf'"),
        (["tag", "slides.pdf"], "error: say which tags to --add or --remove"),
        (["list", "--tag=-x"], "error: bad tag '-x'"),
        (["delete", "nope"], "error: no document with the id or name 'nope'"),
    ],
)
def test_bad_scopes_tags_and_names_are_one_line_exit_1_and_change_nothing(
    cli, indexed, command, message
):
    before = listed(cli)
    code, out, err = cli(*command)
    assert code == 1 and out == ""
    assert err.startswith(message) and err.count("\n") == 1
    assert listed(cli) == before


def test_a_bad_tag_refuses_indexing_before_any_file(cli, tmp_path):
    code, out, err = cli("index", str(SAMPLES), "--tag", "ok", "--tag", "not ok")
    assert (code, out) == (1, "") and err.startswith("error: bad tag 'not ok'")
    assert listed(cli) == {}


@pytest.mark.parametrize("index", ["local", "qdrant::memory:"])
def test_the_python_api_takes_the_same_scope(tiny_models, tmp_path, sample_pdf, index):
    retriever = str(tiny_models / "colqwen2")
    settings = Settings(data_dir=tmp_path, dpi=36, retriever=retriever, index=index)
    pipeline = Pipeline(settings)
    report = pipeline.add_file(sample_pdf, tags=["finance"]).doc_id
    slides = pipeline.add_file(SAMPLES / "product_slides.pdf").doc_id
    assert pipeline.scope() is None
    assert pipeline.scope(tags=["Finance"]) == {report}
    assert {h.doc_id for h in pipeline.search("revenue?", 6, docs=[slides])} == {slides}
    assert {h.doc_id for h in pipeline.search("revenue?", 6, tags=["finance"])} == {report}
    with pytest.raises(TagError):
        pipeline.search("revenue?", tags=["nothing"])
    with pytest.raises(DocumentNotFoundError):
        pipeline.find("missing.pdf")
    pipeline.add_file(SAMPLES / "expense_form.pdf", name="annual_report.pdf")
    with pytest.raises(AmbiguousNameError):
        pipeline.find("annual_report.pdf")
    assert pipeline.tag("product_slides.pdf", add=["deck"]).tags == ("deck",)
    assert pipeline.delete("product_slides.pdf").doc_id == slides  # by its unique name
    assert [d.doc_id for d in pipeline.documents(tags=["finance"])] == [report]
