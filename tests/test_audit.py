"""The audit log (rag/audit.py): one JSON object per line, rotated by size, off without a path."""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from pathlib import Path

import pytest

from rag.audit import Audit


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_event_is_one_json_line(tmp_path):
    audit = Audit(tmp_path / "audit.jsonl")
    audit.record("login", "alice", ok=True, address="127.0.0.1")
    audit.record(
        "question",
        "alice",
        question="Wer hat die Reise genehmigt?",
        scope={"docs": [], "tags": {"finance"}},
        pages=[{"doc_id": "ab12", "page": 3}],
        file=Path("/srv/a.pdf"),
    )
    audit.close()
    first, second = lines(tmp_path / "audit.jsonl")
    assert first == {"time": first["time"], "event": "login", "who": "alice"} | {
        "ok": True,
        "address": "127.0.0.1",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["time"])
    assert list(second)[:3] == ["time", "event", "who"]
    assert second["question"] == "Wer hat die Reise genehmigt?"
    assert second["scope"] == {"docs": [], "tags": ["finance"]}  # a set, written as a list
    assert second["pages"] == [{"doc_id": "ab12", "page": 3}] and second["file"] == "/srv/a.pdf"


def test_details_may_not_overwrite_the_header(tmp_path):
    audit = Audit(tmp_path / "audit.jsonl")
    with pytest.raises(ValueError, match="may not be named time"):
        audit.record("upload", "alice", time="yesterday")
    assert not (tmp_path / "audit.jsonl").exists()


def test_rotation_by_size_keeps_the_backups_asked(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit = Audit(path, max_bytes=300, backups=2)
    for number in range(40):
        audit.record("delete", "alice", doc_id=f"{number:016x}", name="report.pdf")
    audit.close()
    names = sorted(entry.name for entry in tmp_path.iterdir())
    assert names == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    for kept in tmp_path.iterdir():
        assert kept.stat().st_size <= 300
        assert all(line["event"] == "delete" for line in lines(kept))
    assert lines(path)[-1]["doc_id"] == f"{39:016x}"  # the newest is in the file itself


def test_no_path_records_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    audit = Audit(None)
    audit.record("login", "alice", ok=False, address="10.0.0.1")
    audit.close()
    assert not audit and list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_made(tmp_path):
    folder = tmp_path / "logs" / "audit"
    audit = Audit(folder / "audit.jsonl")
    assert audit
    audit.record("sync", "", added=1)
    audit.close()
    shutil.rmtree(tmp_path / "logs")  # removed while the app runs
    audit.record("sync", "", added=2)
    audit.close()
    assert [line["added"] for line in lines(folder / "audit.jsonl")] == [2]


def test_threads_write_whole_lines_and_nothing_reaches_the_root_logger(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    audit = Audit(tmp_path / "audit.jsonl")

    def ask(who: str) -> None:
        for number in range(50):
            audit.record("question", who, question=f"question {number} " + "x" * 200)

    threads = [threading.Thread(target=ask, args=(f"user{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    audit.close()
    assert len(lines(tmp_path / "audit.jsonl")) == 300
    assert caplog.records == []
