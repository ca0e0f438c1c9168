"""Folders kept in sync (rag.sync, rag.scan, rag.watch, ``app.py sync``), on the tiny ColQwen2:
files added, edited, renamed, moved, deleted and added back; a second run changes and hashes
nothing; files still being written, unreadable files and folders, missing sources, link loops;
kill -9 at any moment then a rerun; a real watchdog observer while questions are asked; a
folder of 10,000 files."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

import app
from rag import ingest
from rag.config import Settings
from rag.errors import RagError
from rag.index.store import DocumentStore
from rag.ingest import sources as ingest_sources
from rag.models.loaded import Models
from rag.pipeline import Pipeline
from rag.scan import StatCache
from rag.sync import SyncReport, sync
from rag.watch import Syncer, SyncStatus, watch
from tests.helpers.index import assert_consistent
from tests.helpers.pdfs import EXPENSE_FORM
from tests.helpers.processes import kill_after, start, wait_until

pytestmark = pytest.mark.models

WORD = "Expense"  # on the form's page: assert_consistent finds every document by it


# -- files -----------------------------------------------------------------------------------


def aged(path: Path, seconds: float = 60) -> Path:
    """``path`` dated ``seconds`` ago: settled, and old enough for the stat cache."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def form(path: Path, copy: int) -> Path:
    """The one-page expense form with its own bytes (so its own document id), settled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(EXPENSE_FORM.read_bytes() + f"\n% copy {copy}\n".encode())
    return aged(path)


def edit(path: Path, what: str = "edit") -> Path:
    """A new version of ``path``: the same page, other bytes."""
    with path.open("ab") as handle:
        handle.write(f"% {what}\n".encode())
    return aged(path, 30)


def content_id(path: Path) -> str:
    return ingest.content_id([path])


def listed(pipeline: Pipeline) -> set[tuple]:
    """What a sync is judged by: each document's content, source, tags and visibility."""
    return {(d.doc_id, d.source, d.tags, d.visibility) for d in pipeline.documents()}


def by_id(pipeline: Pipeline) -> dict:
    return {d.doc_id: d for d in pipeline.documents()}


# -- pipelines -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings_for(tiny_models):
    retriever = str(tiny_models / "colqwen2")

    def settings(data_dir: Path, **changes) -> Settings:
        return Settings(data_dir=data_dir, retriever=retriever, dpi=36, **changes)

    return settings


@pytest.fixture(scope="module")
def models(settings_for, tmp_path_factory) -> Models:
    """One tiny retriever for every pipeline of this module (loaded once)."""
    return Models(settings_for(tmp_path_factory.mktemp("unused")))


@pytest.fixture
def make_pipeline(settings_for, models):
    def make(data_dir: Path, **changes) -> Pipeline:
        return Pipeline(settings_for(data_dir, **changes), models=models)

    return make


@pytest.fixture
def pipeline(make_pipeline, tmp_path) -> Pipeline:
    return make_pipeline(tmp_path / "data")


def synced(pipeline: Pipeline, *sources: Path, **options) -> SyncReport:
    options.setdefault("settle_s", 0)
    report = sync(pipeline, list(sources), **options)
    assert report.summary.count("\n") == 0
    return report


def counts(report: SyncReport) -> tuple[int, ...]:
    return (report.added, report.replaced, report.removed, report.unchanged, report.refused)


# -- one folder through its life -------------------------------------------------------------


def test_the_index_follows_adds_edits_renames_moves_deletes_and_re_adds(pipeline, tmp_path):
    src = tmp_path / "src"
    a, b, c = form(src / "a.pdf", 1), form(src / "b.pdf", 2), form(src / "sub" / "c.pdf", 3)
    ids = {path.name: content_id(path) for path in (a, b, c)}

    first = synced(pipeline, src, tags=["synced"], visibility="group:finance")
    assert counts(first) == (3, 0, 0, 0, 0) and not first.missing
    assert first.summary == "sync: 3 added, 0 replaced, 0 removed, 0 unchanged, 0 refused"
    assert first.messages == [
        f"{src.resolve() / name}: added, 1 page (id {ids[Path(name).name]})"
        for name in ("a.pdf", "b.pdf", "sub/c.pdf")
    ]
    assert listed(pipeline) == {
        (ids[p.name], str(p.resolve()), ("synced",), "group:finance") for p in (a, b, c)
    }

    # A rename and a move: the same documents, their tags and visibility kept.
    pipeline.tag(ids["a.pdf"], add=["kept"])
    a.rename(src / "a-renamed.pdf")
    (src / "other").mkdir()
    c.rename(src / "other" / "c.pdf")
    moved = synced(pipeline, src)
    assert counts(moved) == (0, 0, 0, 3, 0)
    assert sorted(change.action for change in moved.changes) == ["moved", "moved"]
    documents = by_id(pipeline)
    assert set(documents) == set(ids.values())
    renamed = documents[ids["a.pdf"]]
    assert renamed.source == str(src.resolve() / "a-renamed.pdf")
    assert renamed.name == "a-renamed.pdf"  # it was named after its file
    assert renamed.tags == ("kept", "synced") and renamed.visibility == "group:finance"
    assert documents[ids["c.pdf"]].source == str(src.resolve() / "other" / "c.pdf")

    # An edit: a new version replaces the old one, keeping its tags and visibility.
    edit(b)
    replaced = synced(pipeline, src, tags=["v2"])
    assert counts(replaced) == (0, 1, 0, 2, 0)
    documents = by_id(pipeline)
    assert ids["b.pdf"] not in documents and len(documents) == 3
    new_b = documents[content_id(b)]
    assert new_b.source == str(b.resolve()) and new_b.replaces == ""
    assert (new_b.tags, new_b.visibility) == (("synced", "v2"), "group:finance")

    # A copy of a synced file: still one document.
    shutil.copy2(b, src / "b-copy.pdf")
    copied = synced(pipeline, src)
    assert counts(copied) == (0, 0, 0, 4, 0) and not copied.changes
    assert len(pipeline.documents()) == 3

    # A file deleted: reported missing, removed with prune.
    (src / "a-renamed.pdf").unlink()
    missing = synced(pipeline, src)
    assert counts(missing) == (0, 0, 0, 3, 0)
    assert [(m.name, m.path) for m in missing.missing] == [
        ("a-renamed.pdf", str(src.resolve() / "a-renamed.pdf"))
    ]
    assert missing.summary.endswith("; 1 missing (--prune removes them)")
    assert ids["a.pdf"] in by_id(pipeline)
    pruned = synced(pipeline, src, prune=True)
    assert counts(pruned) == (0, 0, 1, 3, 0) and not pruned.missing
    assert ids["a.pdf"] not in by_id(pipeline)

    # Added back: its old id again, as a new document.
    form(src / "a.pdf", 1)
    again = synced(pipeline, src)
    assert counts(again) == (1, 0, 0, 3, 0)
    assert by_id(pipeline)[ids["a.pdf"]].tags == ()
    assert len(pipeline.documents()) == 3  # nothing doubled
    assert counts(synced(pipeline, src, prune=True)) == (0, 0, 0, 4, 0)


def test_an_edit_and_a_move_at_once_keep_the_old_version_where_it_went(pipeline, tmp_path):
    src = tmp_path / "src"
    report = form(src / "report.pdf", 1)
    synced(pipeline, src)
    old_id = content_id(report)
    # The old version is kept under another name; a new one is written in its place.
    report.rename(src / "report-2024.pdf")
    form(src / "report.pdf", 2)
    run = synced(pipeline, src, prune=True)
    assert counts(run) == (1, 0, 0, 1, 0)
    documents = by_id(pipeline)
    assert documents[old_id].source == str(src.resolve() / "report-2024.pdf")
    assert documents[content_id(src / "report.pdf")].source == str(src.resolve() / "report.pdf")


def test_a_second_run_changes_nothing_and_reads_no_file(pipeline, tmp_path, monkeypatch):
    src = tmp_path / "src"
    for number in range(4):
        form(src / f"doc{number}.pdf", number)
    (src / "no-extension").write_bytes(EXPENSE_FORM.read_bytes() + b"% 9\n")  # a PDF by header
    aged(src / "no-extension")
    (src / "data.bin").write_bytes(b"\x00" * 100)  # no document: ignored, without a line
    aged(src / "data.bin")
    assert counts(synced(pipeline, src)) == (5, 0, 0, 0, 0)

    hashed, peeked = [], []
    real_hash, real_peek = ingest.content_id, ingest_sources._pdf_header
    monkeypatch.setattr(
        ingest, "content_id", lambda paths: hashed.append(paths) or real_hash(paths)
    )
    monkeypatch.setattr(
        ingest_sources, "_pdf_header", lambda path: peeked.append(path) or real_peek(path)
    )
    second = synced(pipeline, src, prune=True)
    assert counts(second) == (0, 0, 0, 5, 0) and not second.changes and not second.missing
    assert hashed == [] and peeked == []  # the stat cache answered for every file

    # The cache is only a cache: lost, or written by something else, it costs reading again.
    for cache in (tmp_path / "data" / "sync").iterdir():
        cache.write_text("{not json")
    third = synced(pipeline, src, prune=True)
    assert counts(third) == (0, 0, 0, 5, 0) and len(hashed) == 5
    # A file whose size or mtime changed is read again, even with the same name.
    edit(src / "doc0.pdf")
    hashed.clear()
    assert counts(synced(pipeline, src)) == (0, 1, 0, 4, 0)
    assert [paths[0].name for paths in hashed] == ["doc0.pdf", "doc0.pdf"]  # sync, then add


def test_a_file_still_being_written_waits_for_the_next_sync(pipeline, tmp_path):
    src = tmp_path / "src"
    done = form(src / "done.pdf", 1)
    synced(pipeline, src)
    copying = src / "copying.pdf"
    copying.write_bytes(EXPENSE_FORM.read_bytes()[:5000])  # half a file, written just now
    edit(done)
    os.utime(done)  # being saved right now too
    report = synced(pipeline, src, settle_s=30, prune=True)
    assert counts(report) == (0, 0, 0, 0, 0) and report.waiting == 2
    assert report.messages == [
        f"{src.resolve() / name}: still changing, taken at the next sync"
        for name in ("copying.pdf", "done.pdf")
    ]
    assert report.summary.endswith("; 2 still changing (taken at the next sync)")
    assert len(pipeline.documents()) == 1  # the older version of done.pdf stays
    copying.write_bytes(EXPENSE_FORM.read_bytes())
    aged(copying)
    aged(done)
    assert counts(synced(pipeline, src, settle_s=30)) == (1, 1, 0, 0, 0)


def _chmod_stops_reads(probe: Path) -> bool:
    """False for root (with its capability to read anything)."""
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        probe.read_bytes()
    except PermissionError:
        return True
    finally:
        probe.unlink()
    return False


def _refuse_reading(monkeypatch, file: Path, folder: Path) -> None:
    """As root, chmod stops nothing: the file and the folder refuse as unreadable ones do."""
    real_hash, real_scandir = ingest.content_id, os.scandir

    def hashing(paths):
        if Path(paths[0]) == file:
            raise PermissionError(13, "Permission denied", str(file))
        return real_hash(paths)

    def listing(path="."):
        if not isinstance(path, int) and Path(path) == folder:  # rmtree lists descriptors
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(ingest, "content_id", hashing)
    monkeypatch.setattr(os, "scandir", listing)


@pytest.mark.parametrize("how", ["chmod", "simulated"])
def test_unreadable_files_and_folders_are_refused_and_the_rest_go_on(
    how, pipeline, tmp_path, monkeypatch
):
    if how == "chmod" and not _chmod_stops_reads(tmp_path / "probe"):
        pytest.skip("running as root: chmod 000 does not stop reads (the simulated case runs)")
    src = tmp_path / "src"
    kept = form(src / "private" / "kept.pdf", 1)
    synced(pipeline, src)
    locked = form(src / "locked.pdf", 2)
    form(src / "fine.pdf", 3)
    folder = (src / "private").resolve()
    if how == "chmod":
        locked.chmod(0)
        folder.chmod(0)
    else:
        _refuse_reading(monkeypatch, locked.resolve(), folder)
    try:
        report = synced(pipeline, src, prune=True)
    finally:
        locked.chmod(0o644)
        folder.chmod(0o755)
    assert counts(report) == (1, 0, 0, 0, 2)
    assert sorted(report.messages) == [
        f"{src.resolve()}/fine.pdf: added, 1 page (id {content_id(src / 'fine.pdf')})",
        f"{src.resolve()}/locked.pdf: refused: cannot be opened (Permission denied)",
        f"{folder}: refused: folder cannot be read (Permission denied)",
    ]
    # What the unreadable folder held is neither missing nor pruned.
    assert content_id(kept) in by_id(pipeline) and not report.missing


def test_an_empty_mount_never_prunes_what_came_from_it(pipeline, tmp_path):
    src = tmp_path / "share"
    form(src / "a.pdf", 1), form(src / "b.pdf", 2)
    assert synced(pipeline, src).added == 2
    for file in src.iterdir():  # the share failed to mount: the mount point is empty
        file.unlink()
    report = synced(pipeline, src, prune=True)
    assert (report.removed, report.refused) == (0, 1)
    assert "is it mounted? none of them is removed" in report.messages[0]
    assert len(pipeline.documents()) == 2
    form(src / "c.pdf", 3)  # back, with one file left: the others are gone for real
    assert counts(synced(pipeline, src, prune=True))[:3] == (1, 0, 2)


def test_a_missing_or_unreadable_source_changes_nothing(pipeline, tmp_path, capsys):
    src = tmp_path / "src"
    form(src / "a.pdf", 1)
    with pytest.raises(RagError) as raised:
        synced(pipeline, src, tmp_path / "nowhere")
    assert str(raised.value) == (
        f"cannot sync {tmp_path / 'nowhere'}: no such file or folder (nothing was changed)"
    )
    assert pipeline.documents() == []
    with pytest.raises(RagError, match="bad visibility"):
        synced(pipeline, src, visibility="team")
    with pytest.raises(RagError, match="bad tag"):
        synced(pipeline, src, tags=["two words"])
    assert pipeline.documents() == []
    data = f"--data-dir={tmp_path / 'data'}"
    assert app.main(["sync", str(src), str(tmp_path / "nowhere"), data]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"error: cannot sync {tmp_path / 'nowhere'}: no such file or folder (nothing was changed)"
    ]


def test_link_loops_and_dangling_links_are_refused_links_to_files_followed(pipeline, tmp_path):
    src, outside = tmp_path / "src", tmp_path / "outside"
    form(src / "sub" / "a.pdf", 1)
    target = form(outside / "linked-target.pdf", 2)
    (src / "sub" / "up").symlink_to(src)  # a folder link back up: not followed
    (src / "loop.pdf").symlink_to(src / "loop.pdf")  # a link to itself
    (src / "dangling.pdf").symlink_to(tmp_path / "gone.pdf")
    (src / "linked.pdf").symlink_to(target)
    report = synced(pipeline, src)
    assert counts(report) == (2, 0, 0, 0, 2)
    refused = sorted(m for m in report.messages if ": refused: " in m)
    assert refused == [
        f"{src.resolve()}/dangling.pdf: refused: cannot be opened (No such file or directory)",
        f"{src.resolve()}/loop.pdf: refused: cannot be opened (Too many levels of symbolic links)",
    ]
    sources = {d.source for d in pipeline.documents()}
    assert sources == {str(src.resolve() / "sub" / "a.pdf"), str(src.resolve() / "linked.pdf")}
    assert counts(synced(pipeline, src)) == (0, 0, 0, 2, 2)


def test_a_source_inside_another_is_synced_once(pipeline, tmp_path):
    src = tmp_path / "src"
    form(src / "sub" / "a.pdf", 1)
    report = synced(pipeline, src / "sub", src, src / "sub" / "a.pdf", src)
    assert counts(report) == (1, 0, 0, 0, 0)
    assert counts(synced(pipeline, src / "sub")) == (0, 0, 0, 1, 0)


def test_the_data_dir_inside_a_synced_folder_is_not_synced(make_pipeline, tmp_path):
    src = tmp_path / "src"
    form(src / "a.pdf", 1)
    pipeline = make_pipeline(src / "app-data")  # its page images would be documents
    assert counts(synced(pipeline, src)) == (1, 0, 0, 0, 0)
    assert counts(synced(pipeline, src)) == (0, 0, 0, 1, 0)


def test_a_file_named_on_its_own_is_synced_whatever_its_name(pipeline, tmp_path):
    lone = form(tmp_path / "scan.download", 1)  # no known extension; a PDF by its header
    assert counts(synced(pipeline, lone)) == (1, 0, 0, 0, 0)
    edit(lone)
    assert counts(synced(pipeline, lone)) == (0, 1, 0, 0, 0)
    assert [d.source for d in pipeline.documents()] == [str(lone.resolve())]


def test_the_sync_is_audited_once_per_run(make_pipeline, tmp_path):
    log = tmp_path / "audit.jsonl"
    pipeline = make_pipeline(tmp_path / "data", audit_log=str(log))
    form(tmp_path / "src" / "a.pdf", 1)
    synced(pipeline, tmp_path / "src")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    (run,) = [e for e in events if e["event"] == "sync"]
    assert run["who"] == "" and run["sources"] == [str((tmp_path / "src").resolve())]
    assert (run["added"], run["replaced"], run["removed"], run["unchanged"]) == (1, 0, 0, 0)
    assert (run["refused"], run["missing"]) == (0, 0)


# -- the CLI ---------------------------------------------------------------------------------


def test_the_cli_prints_a_line_per_file_then_the_summary(settings_for, tmp_path, capsys):
    src = tmp_path / "src"
    a = form(src / "a.pdf", 1)
    (src / "locked.pdf").symlink_to(tmp_path / "nowhere.pdf")
    common = [
        f"--data-dir={tmp_path / 'data'}",
        f"--retriever={settings_for(tmp_path).retriever}",
    ]
    assert app.main(["sync", str(src), "--tag", "cli", "--visibility", "private", *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{src.resolve()}/locked.pdf: refused: cannot be opened (No such file or directory)",
        f"{src.resolve()}/a.pdf: added, 1 page (id {content_id(a)})",
        "sync: 1 added, 0 replaced, 0 removed, 0 unchanged, 1 refused",
    ]
    a_id = content_id(a)
    a.unlink()
    assert app.main(["sync", str(src), "--json", *common]) == 0  # refused files: still 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[1] == {
        "action": "missing",
        "path": str(src.resolve() / "a.pdf"),
        "name": "a.pdf",
        "doc_id": a_id,
        "detail": "",
    }
    assert records[-1] == {
        "summary": "sync: 0 added, 0 replaced, 0 removed, 0 unchanged, 1 refused; 1 missing "
        "(--prune removes them)",
        "added": 0,
        "replaced": 0,
        "removed": 0,
        "unchanged": 0,
        "refused": 1,
        "waiting": 0,
        "ignored": 0,
        "missing": [{"path": str(src.resolve() / "a.pdf"), "name": "a.pdf", "doc_id": a_id}],
    }


@pytest.mark.processes
def test_sync_watch_in_a_real_process_stops_on_ctrl_c_with_exit_0(
    settings_for, tmp_path, monkeypatch
):
    src = tmp_path / "src"
    a = form(src / "a.pdf", 1)
    retriever = settings_for(tmp_path).retriever
    monkeypatch.setenv("RAG_SYNC_SETTLE_S", "0.3")
    watcher = start(
        "app.py", "sync", str(src), "--watch", f"--data-dir={tmp_path / 'data'}",
        f"--retriever={retriever}",
    )  # fmt: skip
    try:
        assert watcher.stdout.readline() == f"{a.resolve()}: added, 1 page (id {content_id(a)})\n"
        assert watcher.stdout.readline().startswith("sync: 1 added, 0 replaced, 0 removed, 0")
        b = form(src / "b.pdf", 2)
        assert watcher.stdout.readline() == f"{b.resolve()}: added, 1 page (id {content_id(b)})\n"
        assert watcher.stdout.readline().startswith("sync: 1 added, 0 replaced, 0 removed, 1")
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert out == ""


# -- kill -9 ---------------------------------------------------------------------------------


def _before(src: Path) -> None:
    """A synced folder's first state."""
    for number, name in enumerate(["a-edited.pdf", "b-moved.pdf", "c-gone.pdf", "d-same.pdf"]):
        form(src / name, number)


def _after(src: Path) -> None:
    """What changed in it since: an edit (the first file a sync indexes: a replace), a move,
    a deletion, and new files."""
    edit(src / "a-edited.pdf")
    (src / "sub").mkdir()
    (src / "b-moved.pdf").rename(src / "sub" / "b-moved.pdf")
    (src / "c-gone.pdf").unlink()
    for number in range(4):
        form(src / f"new{number}.pdf", 10 + number)


def _adding(staging: Path) -> bool:
    return staging.exists() and any(staging.iterdir())


def _committed(docs: Path) -> int:
    return len(list(docs.iterdir())) if docs.exists() else 0


@pytest.mark.processes
def test_kill_9_at_any_moment_then_a_rerun_ends_as_an_uninterrupted_run(
    make_pipeline, settings_for, tmp_path
):
    src = tmp_path / "src"
    options = {"tags": ["t"], "visibility": "group:x", "prune": True}
    reference = make_pipeline(tmp_path / "reference")
    _before(src)
    synced(reference, src, **options)
    _after(src)
    synced(reference, src, **options)
    expected = listed(reference)
    assert len(expected) == 7

    shutil.rmtree(src)
    _before(src)
    data = tmp_path / "killed"
    synced(make_pipeline(data), src, **options)
    _after(src)
    root, retriever = data / "index", settings_for(data).retriever
    command = [
        "app.py", "sync", str(src), "--tag", "t", "--visibility", "group:x", "--prune",
        f"--data-dir={data}", f"--retriever={retriever}",
    ]  # fmt: skip
    rng = random.Random(3)
    # Where each kill lands, once the models are loaded and the work begun (a document being
    # encoded): at once (the first is the replace), right after a commit, and at random.
    moments = [("adding", 0.0), ("commit", 0.0), ("adding", rng.uniform(0.05, 0.5))]
    moments += [("adding", rng.uniform(0.0, 1.5)) for _ in range(2)]
    interrupted = 0
    for when, delay in moments:
        before = _committed(root / "docs")
        syncer = start(*command)
        ready = {
            "adding": lambda: _adding(root / ".staging"),
            "commit": lambda before=before: _committed(root / "docs") != before,
        }[when]
        wait_until(lambda ready=ready, s=syncer: ready() or s.poll() is not None, when)
        interrupted += kill_after(syncer, delay)
        assert_consistent(root, retriever, WORD)
    assert interrupted >= 3, "the runs ended before their kills: no crash was tested"
    finished = start(*command)
    out, err = finished.communicate(timeout=600)
    assert finished.returncode == 0, err
    assert out.splitlines()[-1].startswith("sync: ")
    assert listed(make_pipeline(data)) == expected
    assert sorted(assert_consistent(root, retriever, WORD)) == sorted(e[0] for e in expected)
    again = start(*command)
    out, err = again.communicate(timeout=600)
    assert out.splitlines() == ["sync: 0 added, 0 replaced, 0 removed, 7 unchanged, 0 refused"]


def test_a_crash_between_a_new_versions_commit_and_the_old_ones_removal(
    make_pipeline, tmp_path, monkeypatch
):
    src, data = tmp_path / "src", tmp_path / "data"
    report = form(src / "report.pdf", 1)
    old_id = content_id(report)
    synced(make_pipeline(data), src)
    edit(report)
    with monkeypatch.context() as dying:  # the process dies right after the new one commits
        dying.setattr(DocumentStore, "_finish_replacements", lambda self, retired=None: None)
        replacing = make_pipeline(data)
        assert counts(synced(replacing, src)) == (0, 1, 0, 0, 0)
        assert set(by_id(replacing)) == {content_id(report)}  # hidden from its commit on
    assert (data / "index" / "docs" / old_id / "doc.json").exists()  # not removed yet
    restarted = make_pipeline(data)
    assert set(by_id(restarted)) == {content_id(report)}
    hits = restarted.search("travel expense claim", top_k=5)
    assert {hit.doc_id for hit in hits} == {content_id(report)}
    assert counts(synced(restarted, src)) == (0, 0, 0, 1, 0)
    form(src / "other.pdf", 2)  # the next commit finishes the removal
    assert counts(synced(restarted, src)) == (1, 0, 0, 1, 0)
    assert not (data / "index" / "docs" / old_id).exists()
    assert len(restarted.documents()) == 2


# -- watching --------------------------------------------------------------------------------


def test_watch_follows_a_folder_while_questions_are_asked(pipeline, tmp_path):
    src = tmp_path / "src"
    first = form(src / "first.pdf", 1)
    reports: list[SyncReport] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch,
        args=(pipeline, [src]),
        kwargs={
            "stop": stop,
            "on_report": reports.append,
            "on_error": errors.append,
            "settle_s": 0.3,
            "rescan_s": 3600,  # only events wake it here
            "prune": True,
        },
    )
    watcher.start()
    asked = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                assert pipeline.search("travel expense claim", top_k=2)
            except BaseException as error:  # any failure is the test's
                errors.append(error)
                return
            asked.set()

    try:
        wait_until(lambda: reports, "the first sync", 60)
        asker = threading.Thread(target=ask)
        asker.start()
        wait_until(asked.is_set, "a first answer", 60)
        ids = lambda: set(by_id(pipeline))  # noqa: E731
        assert ids() == {content_id(first)}

        second = src / "sub" / "second.pdf"
        second.parent.mkdir()
        second.write_bytes(EXPENSE_FORM.read_bytes() + b"% second\n")  # written just now
        wait_until(lambda: content_id(second) in ids(), "the new file", 60)
        with first.open("ab") as handle:
            handle.write(b"% edited\n")
        wait_until(lambda: ids() == {content_id(first), content_id(second)}, "the edit", 60)
        second.unlink()
        wait_until(lambda: ids() == {content_id(first)}, "the deletion", 60)
        runs = len(reports)
        time.sleep(1.0)  # quiet: no event, so no run (reading files wakes nothing)
        assert len(reports) == runs
    finally:
        stop.set()
        watcher.join(30)
    asker.join(30)
    assert not watcher.is_alive() and errors == []
    assert [r.refused for r in reports] == [0] * len(reports)


def test_a_watched_folder_gone_then_back_is_watched_again(pipeline, tmp_path):
    src, away = tmp_path / "src", tmp_path / "away"
    form(src / "a.pdf", 1)
    reports: list[SyncReport] = []
    errors: list[Exception] = []
    stop = threading.Event()
    options = {"stop": stop, "on_report": reports.append, "on_error": errors.append}
    watcher = threading.Thread(
        target=watch, args=(pipeline, [src]), kwargs={**options, "settle_s": 0.2, "rescan_s": 3600}
    )
    watcher.start()
    try:
        wait_until(lambda: reports, "the first sync", 60)
        src.rename(away)  # unmounted, say
        wait_until(lambda: errors, "the failed sync", 60)
        assert str(errors[0]).startswith(f"cannot sync {src.resolve()}: no such file or folder")
        away.rename(src)
        wait_until(lambda: len(reports) >= 2, "the sync once it is back", 60)
        b = form(src / "b.pdf", 2)  # seen by the new watch, not by a rescan (an hour away)
        wait_until(lambda: content_id(b) in by_id(pipeline), "a file added after its return", 60)
    finally:
        stop.set()
        watcher.join(30)
    assert not watcher.is_alive() and len(errors) == 1


def test_the_syncer_reports_its_last_run_and_survives_a_failed_one(
    make_pipeline, tmp_path, monkeypatch, caplog
):
    from rag import watch as watching

    src = tmp_path / "src"
    form(src / "a.pdf", 1)
    pipeline = make_pipeline(tmp_path / "data", sync=str(src), sync_settle_s=0.2)
    real_sync, runs = watching.sync, []

    def flaky(*args, **kwargs):
        runs.append(kwargs)
        if len(runs) == 2:
            raise RuntimeError("the disk went away")
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(watching, "sync", flaky)
    syncer = Syncer(pipeline)
    assert syncer.status() == SyncStatus() and syncer.status().line == ""
    assert syncer.start()
    try:
        wait_until(lambda: syncer.status().summary, "the first run", 60)
        status = syncer.status()
        assert status.line == (
            f"Last sync {status.finished:%H:%M}: 1 added, 0 replaced, 0 removed, 0 unchanged, "
            "0 refused"
        )
        assert runs[0]["visibility"] == "everyone" and runs[0]["prune"] is False
        form(src / "b.pdf", 2)
        wait_until(lambda: syncer.status().error, "the failed run", 60)
        assert syncer.status().line.endswith("failed: the disk went away")
        assert "Traceback" in caplog.text and "the disk went away" in caplog.text
        form(src / "c.pdf", 3)
        wait_until(lambda: len(runs) >= 3 and not syncer.status().error, "the next run", 60)
        wait_until(lambda: not syncer.status().running, "the next run's end", 60)
        assert syncer.status().summary.startswith("sync: 2 added")
    finally:
        syncer.stop(30)
    assert len(pipeline.documents()) == 3
    assert not Syncer(make_pipeline(tmp_path / "other")).start()  # no folders: nothing to do


# -- scale -----------------------------------------------------------------------------------


def test_ten_thousand_files_are_synced_quietly_and_not_read_twice(pipeline, tmp_path, monkeypatch):
    src = tmp_path / "src"
    for folder in range(10):
        part = src / f"part{folder}"
        part.mkdir(parents=True)
        for number in range(1000):
            (part / f"{number:04d}.dat").write_bytes(b"%d" % number)
    for number in range(3):
        form(src / f"part{number}" / f"doc{number}.pdf", number)
    then = time.time() - 60
    for path in src.rglob("*.dat"):
        os.utime(path, (then, then))

    started = time.monotonic()
    report = synced(pipeline, src)
    first_s = time.monotonic() - started
    assert counts(report) == (3, 0, 0, 0, 0) and len(report.changes) == 3
    assert report.ignored == 10_000

    opened = []
    real_open = Path.open

    def opening(path: Path, *args, **kwargs):
        opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", opening)
    started = time.monotonic()
    again = synced(pipeline, src)
    second_s = time.monotonic() - started
    assert counts(again) == (0, 0, 0, 3, 0) and not again.changes
    # Neither hashed nor peeked at: the stat cache knew them all.
    assert [path for path in opened if path.is_relative_to(src)] == []
    caches = list((tmp_path / "data" / "sync").iterdir())
    assert len(caches) == 1 and len(json.loads(caches[0].read_text())["files"]) == 10_003
    assert second_s < max(2.0, first_s), (first_s, second_s)


def test_the_stat_cache_keeps_only_what_it_may_trust(tmp_path):
    root = tmp_path / "src"
    old, new = form(root / "old.pdf", 1), root / "new.pdf"
    new.write_bytes(b"%PDF-1.4 just written")
    cache = StatCache(tmp_path / "cache", root)
    cache.remember(old, old.stat(), "a" * 16)
    cache.remember(new, new.stat(), "b" * 16)  # may change again within its mtime tick
    cache.save()
    again = StatCache(tmp_path / "cache", root)
    assert again.content_id(old, old.stat()) == "a" * 16
    assert again.content_id(new, new.stat()) is None
    edit(old)
    assert again.content_id(old, old.stat()) is None
    assert StatCache(tmp_path / "cache", tmp_path / "elsewhere").old == {}  # another root's


def test_a_report_says_itself_in_one_line():
    report = SyncReport(added=2, replaced=1, unchanged=14, refused=1)
    assert report.summary == "sync: 2 added, 1 replaced, 0 removed, 14 unchanged, 1 refused"
    at = datetime(2026, 12, 3, 14, 2)
    status = SyncStatus(summary=report.summary, finished=at)
    assert status.line == "Last sync 14:02: 2 added, 1 replaced, 0 removed, 14 unchanged, 1 refused"
    running = dataclasses.replace(status, running=True)
    assert running.line == f"{status.line} (syncing now)"
    assert SyncStatus(running=True).line == "Syncing…"
    failed = dataclasses.replace(status, error="cannot sync /srv/docs: no such file or folder")
    assert failed.line == "Last sync 14:02 failed: cannot sync /srv/docs: no such file or folder"
