"""kill -9 the indexer (and a deleter) at random moments: the index always opens, lists only
whole, searchable documents, cleans what the dead process left, and re-running finishes."""

from __future__ import annotations

import json
import random

import pytest

from tests.helpers.index import assert_consistent
from tests.helpers.pdfs import distinct_copies
from tests.helpers.processes import kill_after, start

pytestmark = pytest.mark.models

N_DOCS = 6


def test_killing_the_indexer_at_random_moments_loses_nothing(tiny_models, tmp_path):
    inputs = distinct_copies(tmp_path / "inputs", N_DOCS)
    retriever = str(tiny_models / "colqwen2")
    common = [f"--retriever={retriever}", f"--data-dir={tmp_path / 'data'}"]
    index_command = ["app.py", "index", "--json", str(inputs[0].parent), *common]
    rng = random.Random(5)
    seen: list[str] = []
    for _ in range(4):
        kill_after(start(*index_command), rng.uniform(2.0, 12.0))
        listed = assert_consistent(tmp_path / "data" / "index", retriever)
        assert set(seen) <= set(listed)  # what was committed stays committed
        seen = listed
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
    # A process deleting every document as fast as it can, killed at random moments.
    script = (
        "import sys\nfrom rag.index.local import LocalIndex\n"
        "index = LocalIndex(sys.argv[1], sys.argv[2])\n"
        "for document in index.documents():\n    index.delete(document.doc_id)\n"
    )
    rng = random.Random(7)
    remaining = assert_consistent(root, retriever)
    while remaining:
        kill_after(start("-c", script, str(root), retriever), rng.uniform(0.5, 3.0))
        now = assert_consistent(root, retriever)
        assert set(now) <= set(remaining)
        remaining = now
