"""Several writers on one index (two `index` jobs, a CLI job beside the web app): they take
turns to commit, a document indexed meanwhile is reported as skipped, readers see every
writer's documents, and nothing crashes."""

from __future__ import annotations

import json

import pytest
import torch

from rag.index.local import LocalIndex
from rag.pipeline import Pipeline
from tests.helpers.index import assert_consistent
from tests.helpers.pdfs import distinct_copies
from tests.helpers.processes import start

pytestmark = pytest.mark.models


def test_a_document_committed_meanwhile_by_another_writer_is_skipped(indexing_settings, sample_pdf):
    settings = indexing_settings
    first = Pipeline(settings)
    second = Pipeline(settings, models=first.models)  # its own index object, as another process
    results = []

    def meanwhile(done: int, total: int, name: str) -> None:
        if done and not results:  # the first writer is encoding: the second adds the same file
            results.append(second.add_file(sample_pdf))

    outcome = first.add_file(sample_pdf, progress=meanwhile)
    assert results[0].status == "indexed"
    assert (outcome.status, outcome.doc_id, outcome.pages) == ("skipped", results[0].doc_id, 3)
    root = settings.data_dir / "index"
    assert assert_consistent(root, settings.retriever) == [outcome.doc_id]
    assert [d.doc_id for d in first.documents()] == [outcome.doc_id]


@pytest.mark.processes
def test_two_index_processes_on_one_folder_never_collide(tiny_models, tmp_path):
    inputs = distinct_copies(tmp_path / "inputs", 6)
    retriever = str(tiny_models / "colqwen2")
    data = tmp_path / "data"
    common = [f"--retriever={retriever}", f"--data-dir={data}"]
    reader = LocalIndex(data / "index", retriever)  # a server's index, opened before both
    assert reader.documents() == []
    # The same files in the same order: both encode each document at about the same time.
    jobs = [start("app.py", "index", "--json", str(inputs[0].parent), *common) for _ in range(2)]
    outputs = [job.communicate(timeout=600) for job in jobs]
    for job, (_, err) in zip(jobs, outputs, strict=True):
        assert job.returncode == 0, err
        assert "Traceback" not in err
    records = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    assert len(records) == 2 * len(inputs)  # every file reported by both, none dropped
    by_doc: dict[str, list[str]] = {}
    for record in records:
        by_doc.setdefault(record["doc_id"], []).append(record["status"])
    assert len(by_doc) == len(inputs)
    for statuses in by_doc.values():  # indexed by exactly one writer, skipped by the other
        assert sorted(statuses) == ["indexed", "skipped"]
    listed = assert_consistent(data / "index", retriever)
    assert sorted(listed) == sorted(by_doc)
    assert sorted(d.doc_id for d in reader.documents()) == sorted(by_doc)
    assert len(
        reader.search(torch.nn.functional.normalize(torch.randn(4, reader.dim), dim=-1), k=100)
    ) == 3 * len(inputs)
