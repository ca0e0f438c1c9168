"""Pages staged on disk while a document is encoded: round trips, chunks, and an index add."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rag.index.local import LocalIndex
from rag.index.records import Document
from rag.index.staged import StagedPages, page_chunks, page_lengths


def pages_of(lengths: list[int], dim: int = 8, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, dim, generator=generator) for n in lengths]


def test_staged_pages_read_back_exactly_as_appended(tmp_path):
    pages = pages_of([3, 7, 1, 5, 4])
    staged = StagedPages(tmp_path / "v.staged")
    staged.append(pages[:2])
    staged.append(pages[2:])
    assert len(staged) == 5 and staged.tokens == 20 and staged.lengths == [3, 7, 1, 5, 4]
    assert all(torch.equal(a, b) for a, b in zip(staged, pages, strict=True))
    assert torch.equal(staged[-1], pages[-1])
    assert [p.shape for p in staged[1:4]] == [p.shape for p in pages[1:4]]
    assert (tmp_path / "v.staged").stat().st_size == 20 * 8 * 4
    with pytest.raises(IndexError):
        staged[5]


def test_bf16_pages_are_staged_as_float32_values(tmp_path):
    page = torch.randn(4, 8).to(torch.bfloat16)
    staged = StagedPages(tmp_path / "v.staged")
    staged.append([page])
    assert staged[0].dtype == torch.float32 and torch.equal(staged[0], page.float())


def test_pages_of_another_width_are_refused(tmp_path):
    staged = StagedPages(tmp_path / "v.staged")
    staged.append(pages_of([2]))
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        staged.append(pages_of([2], dim=16))
    assert len(staged) == 1


@pytest.mark.parametrize("max_tokens", [1, 6, 10, 1000])
def test_chunks_cover_whole_pages_in_order(tmp_path, max_tokens):
    pages = pages_of([3, 7, 1, 5, 4])
    staged = StagedPages(tmp_path / "v.staged")
    staged.append(pages)
    for source in (staged, pages):
        chunks = list(page_chunks(source, max_tokens))
        assert [n for lengths, _ in chunks for n in lengths] == [3, 7, 1, 5, 4]
        assert torch.equal(torch.cat([rows for _, rows in chunks]), torch.cat(pages))
        for lengths, rows in chunks:
            assert rows.shape[0] == sum(lengths)
            assert len(lengths) == 1 or sum(lengths[:-1]) < max_tokens  # never past the limit
    assert page_lengths(staged) == page_lengths(pages) == [3, 7, 1, 5, 4]


@pytest.mark.parametrize("mode", ["exact", "pooled", "binary"])
def test_an_index_stores_staged_pages_exactly_as_a_list(tmp_path, mode, monkeypatch):
    monkeypatch.setattr("rag.index.staged.CHUNK_TOKENS", 16)  # several chunks per document
    chunks = list(page_chunks(pages_of([30, 12, 25, 9])))
    assert len(chunks) == 3
    pages = pages_of([30, 12, 25, 9], dim=64, seed=1)
    staged = StagedPages(tmp_path / "v.staged")
    staged.append(pages)
    folders = []
    for name, embeddings in (("list", pages), ("staged", staged)):
        index = LocalIndex(tmp_path / name, "tiny/colqwen2", mode=mode, pool_factor=2)
        with index.staging() as folder:
            index.add(Document("aaaa", "a.pdf", 4, "2026-01-01"), folder, embeddings)
        folders.append(tmp_path / name / "docs" / "aaaa")
    names = sorted(p.name for p in folders[0].iterdir())
    assert names == sorted(p.name for p in folders[1].iterdir())
    assert "v.staged" not in names and not any(n.endswith(".staged") for n in names)
    for name in names:
        if name.endswith(".npy"):
            assert np.array_equal(np.load(folders[0] / name), np.load(folders[1] / name)), name


@pytest.mark.models
def test_page_workers_index_the_same_vectors_in_page_order(tiny_models, tmp_path):
    # One page worker on the CPU prepares pages on the encoder's thread; three, ahead of it.
    from rag.config import Settings
    from rag.pipeline import Models, Pipeline
    from tests.helpers import SAMPLES

    base = Settings(retriever=str(tiny_models / "colqwen2"), dpi=48, device="cpu")
    models = Models(dataclasses.replace(base, batch_size=1))
    indexed = {}
    for workers in (1, 3):
        settings = dataclasses.replace(
            base,
            data_dir=tmp_path / str(workers),
            batch_size=1,
            render_chunk_pages=1,
            page_workers=workers,
        )
        pipeline = Pipeline(settings, models=models)
        progress: list[int] = []
        result = pipeline.add_file(SAMPLES / "product_slides.pdf", progress=_done_into(progress))
        assert result.status == "indexed" and progress == [0, 1, 2, 3]
        index = pipeline.index
        indexed[workers] = [index.page_embedding(result.doc_id, n) for n in (1, 2, 3)]
    for serial, parallel in zip(indexed[1], indexed[3], strict=True):
        assert torch.equal(serial, parallel)


@pytest.mark.models
@pytest.mark.parametrize("workers", [1, 3])
def test_pages_are_prepared_on_the_encoders_thread_only_with_one_cpu_page_worker(
    tiny_models, tmp_path, workers
):
    import threading

    from tests.helpers import pdfs

    pipeline = _page_at_a_time(tiny_models, tmp_path, workers)
    retriever = pipeline.retriever
    threads = {"preprocess": set(), "encode": set()}
    for name, seen in threads.items():
        original = getattr(retriever, name)

        def recorded(inputs, original=original, seen=seen):
            seen.add(threading.current_thread().name)
            return original(inputs)

        setattr(retriever, name, recorded)
    assert pipeline.add_file(pdfs.blank_pages(tmp_path / "blank.pdf", 4)).status == "indexed"
    assert threads["encode"] == {threading.current_thread().name}
    if workers == 1:
        assert threads["preprocess"] == threads["encode"]
    else:
        assert threads["preprocess"].isdisjoint(threads["encode"])
    assert not any(t.name.startswith(("prepare", "render-ahead")) for t in threading.enumerate())


@pytest.mark.models
@pytest.mark.parametrize("workers", [1, 3])
def test_an_encoder_failure_mid_document_stops_every_worker_and_adds_nothing(
    tiny_models, tmp_path, monkeypatch, workers
):
    import threading

    from tests.helpers import pdfs

    pipeline = _page_at_a_time(tiny_models, tmp_path, workers)
    retriever = pipeline.retriever
    calls = []
    encode = retriever.encode

    def failing(inputs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("CUDA error: device lost")
        return encode(inputs)

    monkeypatch.setattr(retriever, "encode", failing)
    # An error no check foresaw is the file's one-line refusal, never the app's crash.
    result = pipeline.add_file(pdfs.blank_pages(tmp_path / "blank.pdf", 12))
    assert result.status == "refused"
    assert result.error == "blank.pdf: could not be read (RuntimeError: CUDA error: device lost)"
    assert pipeline.documents() == []
    assert not any(t.name.startswith(("prepare", "render-ahead")) for t in threading.enumerate())
    assert not any((tmp_path / "index" / ".staging").iterdir())  # rendered pages removed
    assert len(calls) == 2  # nothing encoded after the failure


def _page_at_a_time(tiny_models, data_dir, workers: int):
    """A pipeline over the tiny ColQwen2 on the CPU: one page a batch and a render chunk."""
    from rag.config import Settings
    from rag.pipeline import Models, Pipeline

    settings = Settings(
        retriever=str(tiny_models / "colqwen2"),
        dpi=48,
        device="cpu",
        data_dir=data_dir,
        batch_size=1,
        render_chunk_pages=1,
        page_workers=workers,
    )
    return Pipeline(settings, models=Models(settings))


def _done_into(progress: list[int]):
    return lambda done, total, name: progress.append(done)
