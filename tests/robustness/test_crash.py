"""kill -9 the indexer (and a deleter) at random moments: the index always opens, lists only
whole, searchable documents, cleans what the dead process left, and re-running finishes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.helpers.index import assert_consistent
from tests.helpers.pdfs import distinct_copies
from tests.helpers.processes import kill_after, start, wait_until

pytestmark = [pytest.mark.models, pytest.mark.processes]  # kill -9

N_DOCS = 6
DELETE_WINDOW_S = 0.01  # deleting the documents takes a few milliseconds


def adding(staging: Path) -> bool:
    """Whether a document is being added: its pages or vectors are in staging."""
    return staging.exists() and any(staging.iterdir())


def test_killing_the_indexer_at_random_moments_loses_nothing(tiny_models, tmp_path):
    inputs = distinct_copies(tmp_path / "inputs", N_DOCS)
    retriever = str(tiny_models / "colqwen2")
    common = [f"--retriever={retriever}", f"--data-dir={tmp_path / 'data'}"]
    index_command = ["app.py", "index", "--json", str(inputs[0].parent), *common]
    staging = tmp_path / "data" / "index" / ".staging"
    rng = random.Random(5)
    seen: list[str] = []
    interrupted = 0  # kills that landed while a document was being added
    for _ in range(4):
        indexer = start(*index_command)
        # Its models loading takes most of a run: the kill comes at a random moment of the
        # work that follows (a document in staging), not of the start-up.
        started = lambda indexer=indexer: adding(staging) or indexer.poll() is not None  # noqa: E731
        wait_until(started, "the first add")
        killed = kill_after(indexer, rng.uniform(0.0, 1.0))
        interrupted += killed and adding(staging)
        listed = assert_consistent(tmp_path / "data" / "index", retriever)  # cleans them
        assert set(seen) <= set(listed)  # what was committed stays committed
        seen = listed
        if len(seen) == N_DOCS:  # nothing left to interrupt
            break
    assert interrupted >= 1, "no kill landed while a document was being added"
    finished = start(*index_command)
    out, err = finished.communicate(timeout=600)
    assert finished.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] in {"indexed", "skipped"} for r in records] == [True] * N_DOCS
    assert len(assert_consistent(tmp_path / "data" / "index", retriever)) == N_DOCS


def test_killing_a_deleter_at_random_moments_leaves_whole_documents(tiny_models, tmp_path):
    inputs = distinct_copies(tmp_path / "inputs", N_DOCS)
    retriever = str(tiny_models / "colqwen2")
    root = tmp_path / "data" / "index"
    common = [f"--retriever={retriever}", f"--data-dir={tmp_path / 'data'}"]
    done = start("app.py", "index", str(inputs[0].parent), *common)
    assert done.wait(timeout=600) == 0
    # A process deleting every document as fast as it can, killed at random moments of its
    # work (it says when its imports are done and the index is open).
    script = (
        "import sys\nfrom rag.index.local import LocalIndex\n"
        "index = LocalIndex(sys.argv[1], sys.argv[2])\n"
        "print('ready', flush=True)\n"
        "for document in index.documents():\n    index.delete(document.doc_id)\n"
    )
    rng = random.Random(7)
    remaining = assert_consistent(root, retriever)
    interrupted = 0  # kills that landed with documents still to delete
    while remaining:
        deleter = start("-c", script, str(root), retriever)
        assert deleter.stdout.readline().strip() == "ready", deleter.communicate()[1]
        killed = kill_after(deleter, rng.uniform(0.0, DELETE_WINDOW_S))
        now = assert_consistent(root, retriever)
        assert set(now) <= set(remaining)
        interrupted += killed and bool(now)
        remaining = now
    assert interrupted >= 1, "every deleter finished before its kill: no crash was tested"
