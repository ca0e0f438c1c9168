"""The CLI contract of DESIGN.md, end to end on sample PDFs, for every model family."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import app
from rag.config import Settings
from tests.helpers import ROOT, SAMPLES, pdfs
from tests.helpers.files import truncated

pytestmark = pytest.mark.models

# Every retriever and every answerer family appears at least once.
PAIRS = [
    ("colqwen2", "qwen2_vl"),
    ("colqwen2_5", "qwen2_5_vl"),
    ("colpali", "paligemma"),
    ("colpali_lora", "idefics3"),
    ("colidefics3", "qwen2_vl"),
    ("colqwen3", "qwen3_vl"),
    ("colqwen2", "qwen3_vl_moe"),
    ("colgemma3", "gemma3"),
    ("colqwen2_5", "paligemma2"),
    ("colidefics3", "smolvlm2"),
    ("colqwen3_5", "qwen3_5"),
    ("colmodernvbert", "smolvlm2"),
    ("colqwen2_5_omni", "qwen2_5_vl"),
]
FAST = {
    "RAG_DPI": "48",
    "RAG_MAX_NEW_TOKENS": "8",
    "RAG_ANSWER_MIN_PIXELS": str(28 * 28 * 4),
    "RAG_ANSWER_MAX_PIXELS": str(28 * 28 * 64),
}


def run_cli(
    *args: str, env: dict[str, str], timeout: int = 300, stdin: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py", *args],
        input=stdin,
        cwd=ROOT,
        env={**os.environ, **FAST, **env},
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang guard, not a speed target
        check=False,
    )


@pytest.mark.parametrize(
    ("retriever", "generator"),
    [
        pytest.param(*pair, id="-".join(pair), marks=() if pair == PAIRS[0] else pytest.mark.slow)
        for pair in PAIRS
    ],
)  # the fast tier asks through the first pair; make test through all of them
def test_index_then_ask_json(retriever, generator, tiny_models, tmp_path, capsys, monkeypatch):
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    common = [
        f"--retriever={tiny_models / retriever}",
        f"--generator={tiny_models / generator}",
        f"--data-dir={tmp_path}",
    ]
    assert app.main(["index", str(SAMPLES / "annual_report.pdf"), "--json", *common]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["status"] == "indexed" and record["pages"] == 3 and record["error"] is None

    assert (
        app.main(["ask", "What was the revenue in 2024?", "--json", "--top-k", "2", *common]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["question"] == "What was the revenue in 2024?"
    assert isinstance(result["answer"], str)
    assert [hit["page"] for hit in result["hits"]] != []
    for hit in result["hits"]:
        assert set(hit) == {"doc_id", "name", "page", "score"} | {
            "visual_score",
            "text_score",
            "rerank_score",
        }
        assert hit["rerank_score"] is None  # RAG_RERANKER is off
        assert hit["doc_id"] == record["doc_id"] and hit["name"] == "annual_report.pdf"
        assert 1 <= hit["page"] <= 3
    assert len(result["hits"]) == 2
    scores = [hit["score"] for hit in result["hits"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.processes
def test_the_whole_contract_in_a_real_process(tiny_models, tmp_path):
    env = {
        "RAG_RETRIEVER": str(tiny_models / "colqwen2"),
        "RAG_GENERATOR": str(tiny_models / "qwen2_vl"),
        "RAG_DATA_DIR": str(tmp_path / "data"),
    }
    bad = tmp_path / "bad"
    bad.mkdir()
    locked = pdfs.encrypted(bad / "locked.pdf", source=pdfs.EXPENSE_FORM)
    broken = truncated(bad / "broken.pdf", pdfs.SOURCE, keep=900)

    first = run_cli("index", str(SAMPLES), str(locked), str(broken), "--json", env=env)
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in first.stdout.splitlines()]
    status = {record["file"]: record["status"] for record in records}
    assert status == {
        "annual_report.pdf": "indexed",
        "expense_form.pdf": "indexed",
        "multilingual.pdf": "indexed",
        "product_slides.pdf": "indexed",
        "locked.pdf": "refused",
        "broken.pdf": "refused",
    }
    refused = [r for r in records if r["status"] == "refused"]
    assert all(r["doc_id"] is None and "\n" not in r["error"] for r in refused)

    again = run_cli("index", str(SAMPLES / "annual_report.pdf"), env=env)
    assert again.returncode == 0 and "already indexed" in again.stdout

    listing = run_cli("list", "--json", env=env)
    documents = [json.loads(line) for line in listing.stdout.splitlines()]
    assert sorted(d["name"] for d in documents) == sorted(p.name for p in SAMPLES.glob("*.pdf"))

    asked = run_cli("ask", "Who approved the travel expenses?", "--top-k", "3", env=env)
    assert asked.returncode == 0, asked.stderr
    assert "Sources:" in asked.stdout and asked.stdout.count(" p.") >= 3

    only_hits = run_cli("ask", "revenue", "--no-answer", "--json", env=env)
    assert json.loads(only_hits.stdout)["answer"] is None

    form = next(d for d in documents if d["name"] == "expense_form.pdf")
    deleted = run_cli("delete", form["doc_id"], env=env)
    assert deleted.returncode == 0 and "expense_form.pdf" in deleted.stdout
    listing = run_cli("list", env=env)
    assert "expense_form.pdf" not in listing.stdout

    missing = run_cli("delete", "0000000000000000", env=env)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no document")


@pytest.mark.processes
@pytest.mark.parametrize("offline", ["1", ""], ids=["HF_HUB_OFFLINE", "unreachable-hub"])
@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_a_missing_model_is_one_clear_line(tmp_path, offline, profile):
    env = {"RAG_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": offline}
    command = ("index", str(SAMPLES / "expense_form.pdf"), "--profile", profile)
    result = run_cli(*command, env=env, timeout=120)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    retriever = Settings.from_env({"RAG_PROFILE": profile}).retriever
    assert line.startswith(f"error: model '{retriever}'")
    assert "RAG_RETRIEVER" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "index" / "docs").exists()  # nothing half-added


@pytest.mark.processes
def test_asking_an_empty_index_says_so(tmp_path):
    result = run_cli("ask", "anything", env={"RAG_DATA_DIR": str(tmp_path)}, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no documents are indexed yet: add a PDF first"


@pytest.mark.parametrize("index", ["qdrant:{tmp}/qdrant", "local"], ids=["qdrant-path", "local"])
@pytest.mark.parametrize("mode", ["exact", "pooled"])
def test_index_backends_and_modes_through_the_cli(index, mode, tiny_models, tmp_path, capsys):
    common = [
        f"--retriever={tiny_models / 'colqwen2'}",
        f"--data-dir={tmp_path}",
        f"--index={index.format(tmp=tmp_path)}",
        f"--index-mode={mode}",
    ]
    assert app.main(["index", str(SAMPLES / "product_slides.pdf"), "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "indexed"
    assert app.main(["ask", "Next steps?", "--json", "--no-answer", "--top-k", "2", *common]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [hit["name"] for hit in hits] == ["product_slides.pdf"] * 2
    assert app.main(["list", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["pages"] == 3


def test_index_reports_progress_with_rate_and_time_left(tiny_models, tmp_path, capsys, monkeypatch):
    common = [f"--retriever={tiny_models / 'colqwen2'}", f"--data-dir={tmp_path}"]
    monkeypatch.setenv("RAG_DPI", "48")
    assert app.main(["index", str(SAMPLES / "product_slides.pdf"), *common]) == 0
    captured = capsys.readouterr()
    assert "product_slides.pdf: indexed, 3 pages" in captured.out
    lines = [line.strip() for line in captured.err.splitlines() if "pages/s" in line]
    assert lines and lines[-1].startswith("product_slides.pdf: 3/3 pages, ")
    assert "done in" in lines[-1]
    assert all(" left" in line for line in lines[:-1])


@pytest.mark.processes
def test_chat_reads_follow_ups_from_stdin_with_their_history(tiny_models, tmp_path):
    env = {
        "RAG_RETRIEVER": str(tiny_models / "colqwen2"),
        "RAG_GENERATOR": str(tiny_models / "qwen2_vl"),
        "RAG_DATA_DIR": str(tmp_path / "data"),
    }
    files = [str(SAMPLES / "annual_report.pdf"), str(SAMPLES / "product_slides.pdf")]
    assert run_cli("index", *files, env=env).returncode == 0
    lines = "What was the revenue in 2024?\n\nAnd in 2023?\n"
    result = run_cli("chat", "--json", "--doc", "annual_report.pdf", env=env, stdin=lines)
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())  # blank skipped
    assert first["searched"] == first["question"] == "What was the revenue in 2024?"
    assert second["question"] == "And in 2023?" and second["searched"]
    assert second["searched"] != second["question"]  # written from the history
    for turn in (first, second):
        assert {hit["name"] for hit in turn["hits"]} == {"annual_report.pdf"}  # the scope

    literal = run_cli("chat", "--no-rewrite", env=env, stdin=lines)
    assert literal.returncode == 0, literal.stderr
    assert literal.stdout.count("Sources:") == 2 and "searched for" not in literal.stdout


def test_usage_errors_exit_1_and_change_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    status = app.main(["index", str(tmp_path / "nope.pdf"), "--data-dir", str(data)])
    assert status == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: no such file or folder: {tmp_path / 'nope.pdf'} (nothing was indexed)"
    assert not (data / "index").exists()
    for value in ("0", "-2", "three"):
        with pytest.raises(SystemExit) as stop:
            app.main(["ask", "anything", "--top-k", value, "--data-dir", str(data)])
        assert stop.value.code == 1
        assert "expected a whole number of at least 1" in capsys.readouterr().err
