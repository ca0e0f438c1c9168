"""kill -9 the indexer (and a deleter) at random moments: the index always opens, lists only
whole, searchable documents, cleans what the dead process left, and re-running finishes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rag.index.local import LocalIndex
from rag.index.store import load_texts
from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.models

FAST = {"RAG_DPI": "36", "HF_HUB_OFFLINE": "1"}
N_DOCS = 6


def distinct_pdfs(folder: Path) -> list[Path]:
    """Copies of a sample with different bytes (so different ids): a trailing comment."""
    folder.mkdir()
    source = (SAMPLES / "annual_report.pdf").read_bytes()
    paths = [folder / f"doc{i}.pdf" for i in range(N_DOCS)]
    for i, path in enumerate(paths):
        path.write_bytes(source + f"\n% copy {i}\n".encode())
    return paths


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **FAST},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after(process: subprocess.Popen, seconds: float) -> None:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()  # SIGKILL: no cleanup handler runs
        process.wait()


def assert_consistent(root: Path, retriever: str) -> list[str]:
    """Open the index as a restarted app would; every listed document whole and searchable."""
    index = LocalIndex(root, retriever)
    staging = root / ".staging"
    assert not staging.exists() or not any(staging.iterdir()), "leftovers were not cleaned"
    documents = index.documents()
    for document in documents:
        folder = root / "docs" / document.doc_id
        assert len(list(folder.glob("page-*.png"))) == document.pages
        for number in range(1, document.pages + 1):
            assert torch.isfinite(index.page_embedding(document.doc_id, number)).all()
    if documents:
        query = torch.nn.functional.normalize(torch.randn(5, index.dim), dim=-1)
        hits = index.search(query, k=100)
        assert len(hits) == sum(d.pages for d in documents)
    for entry in (root / "docs").iterdir() if (root / "docs").exists() else []:
        assert (entry / "doc.json").exists(), f"half a document: {entry.name}"
    # The words came with each document, and the word search (caught up) finds exactly these.
    for document in documents:
        texts = load_texts(root / "docs" / document.doc_id)
        assert [t.page_number for t in texts] == list(range(1, document.pages + 1))
    found = {hit.doc_id for hit in index.lexical.search("Northwind", 100)}
    assert found == {document.doc_id for document in documents}
    index.lexical.close()
    return [document.doc_id for document in documents]


def test_killing_the_indexer_at_random_moments_loses_nothing(tiny_models, tmp_path):
    inputs = distinct_pdfs(tmp_path / "inputs")
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
    inputs = distinct_pdfs(tmp_path / "inputs")
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
