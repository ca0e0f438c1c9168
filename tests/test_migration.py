"""Indexes of the previous release (format 3) open in this one, migrated in place: nothing is
encoded again, every search mode works on them, and a kill -9 during the migration leaves an
index that opens (the old format or the new one)."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rag.index import LocalIndex
from rag.index.binary import binarize
from tests.helpers import ROOT, vectors

RETRIEVER = "tiny/colqwen2"
DIM = 128


def pages(seed: int, count: int, tokens: int = 12) -> list[torch.Tensor]:
    return vectors.pages(seed, count, dim=DIM, tokens=tokens, step=1)


def as_release_3(root: Path, mode: str) -> None:
    """Rewrite an index in the layout release 3 wrote in ``mode``: its header (with the mode,
    without sign-bit or tag fields), sign bits only in binary mode, records without tags."""
    header = json.loads((root / "index.json").read_text())
    old = {key: header[key] for key in ("format", "retriever", "dim", "vectors")}
    pool_factor = header["pool_factor"] if mode == "pooled" else None
    old.update(version=3, mode=mode, pool_factor=pool_factor)
    (root / "index.json").write_text(json.dumps(old))
    for folder in (root / "docs").iterdir():
        record = json.loads((folder / "doc.json").read_text())
        record.pop("tags")
        (folder / "doc.json").write_text(json.dumps(record))
        if mode != "binary":
            (folder / "bits.npy").unlink()


def assert_bits_match_vectors(root: Path) -> None:
    for folder in (root / "docs").iterdir():
        vectors = torch.from_numpy(np.load(folder / "vectors.npy").view(np.int16)).float()
        np.testing.assert_array_equal(np.load(folder / "bits.npy"), binarize(vectors))


@pytest.mark.parametrize("mode", ["exact", "pooled", "binary"])
def test_a_release_3_index_is_migrated_in_place_and_searches_the_same(tmp_path, mode, caplog):
    docs = {"aaaa": pages(0, 3), "bbbb": pages(1, 4)}
    index = LocalIndex(tmp_path, RETRIEVER, mode=mode, pool_factor=2, rerank=50)
    for doc_id, embeddings in docs.items():
        vectors.add(index, doc_id, embeddings)
    query = docs["bbbb"][2][:5]
    before = [(h.doc_id, h.page_number, round(h.score, 3)) for h in index.search(query, 5)]
    as_release_3(tmp_path, mode)
    with caplog.at_level(logging.WARNING, logger="rag.index.migrate"):
        migrated = LocalIndex(tmp_path, RETRIEVER, mode="auto", auto_binary_pages=1, rerank=50)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "rag.index.migrate"]
    assert "format 3 migrated to 4" in line and "no page was encoded again" in line
    header = json.loads((tmp_path / "index.json").read_text())
    assert header["version"] == 4 and "mode" not in header and header["bits"] is True
    assert header["pool_factor"] == (2 if mode == "pooled" else None)
    assert_bits_match_vectors(tmp_path)
    assert [d.tags for d in migrated.documents()] == [(), ()]
    for search in ("auto", "exact", "binary", *(["pooled"] if mode == "pooled" else [])):
        reopened = LocalIndex(tmp_path, RETRIEVER, mode=search, pool_factor=2, rerank=50)
        after = [(h.doc_id, h.page_number, round(h.score, 3)) for h in reopened.search(query, 5)]
        assert after == before
    vectors.add(migrated, "cccc", pages(2, 2))  # and it takes new documents
    assert len(migrated.documents()) == 3


MIGRATE = """
import sys
from rag.index import LocalIndex
print("ready", flush=True)
LocalIndex(sys.argv[1], sys.argv[2])
print("done", flush=True)
"""


@pytest.mark.processes
def test_killing_the_migration_at_random_moments_leaves_an_index_that_opens(tmp_path):
    index = LocalIndex(tmp_path, RETRIEVER)
    for number in range(40):
        vectors.add(index, f"d{number:03d}", pages(number, 6, tokens=600))
    as_release_3(tmp_path, "exact")
    rng = random.Random(3)
    interrupted = 0  # kills that landed before the migration was done
    for _ in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", MIGRATE, str(tmp_path), RETRIEVER],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout.readline().strip() == "ready"  # imports done: migration starts
        time.sleep(rng.uniform(0.0, 0.6))
        running = child.poll() is None
        child.kill()
        child.wait()
        header = json.loads((tmp_path / "index.json").read_text())  # never half written
        assert header["version"] in (3, 4)
        interrupted += running and header["version"] == 3
        for folder in (tmp_path / "docs").iterdir():  # bits whole, or not there
            if (folder / "bits.npy").exists():
                assert np.load(folder / "bits.npy").shape[0] > 0
        if header["version"] == 4:
            break
    assert interrupted >= 1, "the migration finished before every kill: no crash was tested"
    reopened = LocalIndex(tmp_path, RETRIEVER, mode="binary")  # finishes what is left
    assert json.loads((tmp_path / "index.json").read_text())["version"] == 4
    assert_bits_match_vectors(tmp_path)
    assert not list(tmp_path.glob("docs/*/bits.npy.*.tmp"))
    assert len(reopened.documents()) == 40
    hits = reopened.search(pages(7, 6, tokens=600)[2][:8], 1)
    assert (hits[0].doc_id, hits[0].page_number) == ("d007", 3)
