"""One behavioural suite for every index kind (LocalIndex, QdrantIndex in-process), then the few
things only Qdrant has (points outside the local records) and the --index parsing."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from rag.config import Settings, parse_index
from rag.errors import ConfigError, DocumentNotFoundError, IndexMismatchError
from rag.index import Document, Index, LocalIndex, open_index
from rag.index.qdrant import QdrantIndex, point_id
from rag.index.scoring import maxsim
from rag.index.staged import StagedPages
from tests.helpers import vectors
from tests.helpers.vectors import DIM

RETRIEVER = "tiny/colqwen2"

# kind -> (data dir, retriever id) -> a fresh index over that data dir
FACTORIES: dict[str, Callable[[Path, str], Index]] = {
    "local": lambda root, retriever: LocalIndex(root / "index", retriever),
    "local-pooled": lambda root, retriever: LocalIndex(
        root / "index", retriever, mode="pooled", pool_factor=2
    ),
    "local-binary": lambda root, retriever: LocalIndex(root / "index", retriever, mode="binary"),
    "qdrant-memory": lambda root, retriever: QdrantIndex(root / "index", retriever, ":memory:"),
    "qdrant-path": lambda root, retriever: QdrantIndex(
        root / "index", retriever, str(root / "qdrant")
    ),
    "qdrant-pooled": lambda root, retriever: QdrantIndex(
        root / "index", retriever, ":memory:", pooled=2, prefetch=50
    ),
}
# The other kinds keep their vectors in memory.
PERSISTENT = {"local", "local-pooled", "local-binary", "qdrant-path"}


@pytest.fixture(params=list(FACTORIES))
def kind(request) -> str:
    return request.param


@pytest.fixture
def make_index(tmp_path, kind):
    """``make_index()`` opens (or reopens) this test's index; all are closed afterwards."""
    opened: list[Index] = []

    def make(retriever: str = RETRIEVER) -> Index:
        index = FACTORIES[kind](tmp_path, retriever)
        opened.append(index)
        return index

    yield make
    for index in opened:
        _close(index)


def _close(index: Index) -> None:
    close = getattr(index, "close", None)  # Qdrant's local mode locks its folder until closed
    if close is not None:
        close()


def _expected(query: torch.Tensor, docs: dict[str, list[torch.Tensor]]) -> dict:
    return {
        (doc_id, number): float(maxsim(query, page))
        for doc_id, pages in docs.items()
        for number, page in enumerate(pages, start=1)
    }


# -- the shared suite -----------------------------------------------------------------------


def test_search_ranks_pages_by_maxsim_with_reference_scores(make_index):
    index = make_index()
    docs = {"aaaa": vectors.pages(0, 3), "bbbb": vectors.pages(1, 2)}
    for doc_id, pages in docs.items():
        vectors.add(index, doc_id, pages)
    query = docs["bbbb"][1][:4]  # four of page b2's own vectors: b2 must win
    hits = index.search(query, k=4)
    expected = _expected(query, docs)
    assert len(hits) == 4
    assert (hits[0].doc_id, hits[0].page_number) == ("bbbb", 2)
    ranked = sorted(expected, key=expected.get, reverse=True)[:4]
    assert [(hit.doc_id, hit.page_number) for hit in hits] == ranked
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.doc_id, hit.page_number], abs=1e-2)
    assert len(index.search(query, k=50)) == 5


def test_search_within_documents_ranks_only_their_pages_exactly(make_index):
    index = make_index()
    docs = {f"d{i:02d}": vectors.pages(i, 2 + i % 3) for i in range(12)}
    for doc_id, pages in docs.items():
        vectors.add(index, doc_id, pages)
    query = docs["d01"][0][:4]  # page d01 p.1 wins unscoped
    assert (index.search(query, 1)[0].doc_id, index.search(query, 1)[0].page_number) == ("d01", 1)
    scope = {"d04", "d07", "d10"}
    expected = _expected(query, {doc_id: docs[doc_id] for doc_id in scope})
    ranked = sorted(expected, key=expected.get, reverse=True)
    hits = index.search(query, k=len(ranked) + 5, scope=scope)
    assert [(hit.doc_id, hit.page_number) for hit in hits] == ranked  # all of them, no other
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.doc_id, hit.page_number], abs=1e-2)
    top = index.search_many([query, docs["d07"][1][:3]], k=2, scope=scope)
    assert [(h.doc_id, h.page_number) for h in top[0]] == ranked[:2]
    assert (top[1][0].doc_id, top[1][0].page_number) == ("d07", 2)
    assert [h.doc_id for h in index.search(query, 3, scope=["d01"])] == ["d01"] * 3
    assert index.search(query, 3, scope=set()) == []
    with pytest.raises(DocumentNotFoundError, match="zzzz"):
        index.search(query, 3, scope={"d04", "zzzz"})


def test_tags_are_kept_in_the_records_and_survive_a_restart(make_index, kind):
    index = make_index()
    vectors.add(index, "aaaa", vectors.pages(0, 1))
    vectors.add(index, "bbbb", vectors.pages(1, 1))
    assert index.change_tags("aaaa", add=["2024", "Finance"]).tags == ("2024", "finance")
    assert [d.tags for d in index.documents()] == [("2024", "finance"), ()]
    with pytest.raises(DocumentNotFoundError):
        index.change_tags("zzzz", add=["x"])
    if kind in PERSISTENT:
        _close(index)
        assert make_index().get("aaaa").tags == ("2024", "finance")


def test_hits_carry_name_page_citation_and_an_existing_image(make_index):
    index = make_index()
    pages = vectors.pages(0, 2)
    vectors.add(index, "aaaa", pages)
    hit = index.search(pages[1][:3], k=1)[0]
    assert (hit.doc_id, hit.name, hit.page_number) == ("aaaa", "aaaa.pdf", 2)
    assert hit.citation == "[aaaa.pdf p.2]"
    assert hit.image_path.name == "page-0002.png" and hit.image_path.exists()


def test_documents_are_listed_oldest_first_and_found_by_id(make_index):
    index = make_index()
    assert index.documents() == [] and index.search(vectors.pages(9, 1)[0], 3) == []
    newer = vectors.add(index, "bbbb", vectors.pages(1, 1), added="2026-02-01")
    older = vectors.add(index, "aaaa", vectors.pages(0, 2), added="2026-01-01")
    assert index.documents() == [older, newer]
    assert index.get("aaaa") == older and index.get("zzzz") is None
    assert "bbbb" in index and "zzzz" not in index
    assert [doc.doc_id for doc in index] == ["aaaa", "bbbb"]


def test_delete_removes_a_document_from_listing_and_search(make_index):
    index = make_index()
    vectors.add(index, "aaaa", vectors.pages(0, 2))
    vectors.add(index, "bbbb", vectors.pages(1, 2))
    assert index.delete("aaaa").doc_id == "aaaa"
    assert [doc.doc_id for doc in index.documents()] == ["bbbb"]
    assert {hit.doc_id for hit in index.search(vectors.pages(3, 1)[0], 10)} == {"bbbb"}
    with pytest.raises(DocumentNotFoundError):
        index.delete("aaaa")
    with pytest.raises(DocumentNotFoundError):
        index.page_embedding("aaaa", 1)


def test_page_embedding_round_trips(make_index):
    index = make_index()
    pages = vectors.pages(0, 3)
    vectors.add(index, "aaaa", pages)
    for number, page in enumerate(pages, start=1):
        stored = index.page_embedding("aaaa", number).float()
        torch.testing.assert_close(stored, page, atol=1e-2, rtol=0)


def test_documents_and_results_survive_a_restart(make_index, kind):
    if kind not in PERSISTENT:
        pytest.skip(f"{kind} keeps its vectors in memory")
    index = make_index()
    vectors.add(index, "aaaa", vectors.pages(0, 3))
    vectors.add(index, "bbbb", vectors.pages(1, 2))
    query = vectors.pages(2, 1)[0][:5]
    before = index.search(query, 5)
    documents = index.documents()
    _close(index)
    reopened = make_index()
    assert reopened.documents() == documents
    reopened.warm()  # what a server does before its first query
    after = reopened.search(query, 5)
    assert [(h.doc_id, h.page_number) for h in after] == [(h.doc_id, h.page_number) for h in before]
    assert [h.score for h in after] == pytest.approx([h.score for h in before], abs=1e-6)
    torch.testing.assert_close(
        reopened.page_embedding("aaaa", 2).float(), vectors.pages(0, 3)[1], atol=1e-2, rtol=0
    )


def test_another_retriever_or_dimension_is_refused(make_index):
    index = make_index()
    vectors.add(index, "aaaa", vectors.pages(0, 1, dim=DIM))
    with pytest.raises(IndexMismatchError, match=f"{DIM}-d vectors"):
        vectors.add(index, "bbbb", vectors.pages(1, 1, dim=DIM // 2))
    _close(index)
    with pytest.raises(IndexMismatchError, match=f"built with retriever '{RETRIEVER}'"):
        make_index("vidore/colpali-v1.3")
    assert [doc.doc_id for doc in index.documents()] == ["aaaa"]


def test_a_failed_add_leaves_nothing(make_index, kind, monkeypatch):
    """A crash before the commit (the rename of the staged folder): no trace of the document,
    in this index object or, after a restart, in the folder; and it can be added again."""
    index = make_index()
    vectors.add(index, "aaaa", vectors.pages(0, 1))

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="power cut"):
        vectors.add(index, "bbbb", vectors.pages(1, 2))
    monkeypatch.undo()
    assert [doc.doc_id for doc in index.documents()] == ["aaaa"]
    assert {hit.doc_id for hit in index.search(vectors.pages(1, 2)[1], 10)} == {"aaaa"}
    assert not any((index.root / ".staging").iterdir())
    if isinstance(index, QdrantIndex):  # its points were written before the rename: removed
        assert index._stored_doc_ids() == {"aaaa"}
    if kind in PERSISTENT:  # a restarted app finds only the committed document
        _close(index)
        index = make_index()
        assert [doc.doc_id for doc in index.documents()] == ["aaaa"]
    vectors.add(index, "bbbb", vectors.pages(1, 2))  # and the same document can be added again
    assert [doc.doc_id for doc in index.documents()] == ["aaaa", "bbbb"]


def test_adding_a_document_already_there_changes_nothing(make_index):
    """What a writer finds at commit time when another one committed the same file first."""
    index = make_index()
    first = vectors.add(index, "aaaa", vectors.pages(0, 2))
    again = Document("aaaa", "renamed.pdf", 1, "2026-02-02")
    with index.staging() as staged:
        Image.new("RGB", (20, 30), "white").save(staged / "page-0001.png")
        assert index.add(again, staged, vectors.pages(5, 1)) is False
    assert index.documents() == [first]
    query = vectors.pages(0, 2)[1][:3]
    assert index.search(query, 1)[0].score == pytest.approx(float(maxsim(query, query)), abs=1e-2)
    assert not any((index.root / ".staging").iterdir())


# -- Qdrant only: points outside the local records ------------------------------------------


def test_qdrant_upsert_failure_removes_the_points_already_written(tmp_path, monkeypatch):
    index = QdrantIndex(tmp_path / "index", RETRIEVER, ":memory:")
    vectors.add(index, "aaaa", vectors.pages(0, 1))
    upsert, calls = index.client.upsert, []

    def second_batch_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("network down")
        return upsert(*args, **kwargs)

    monkeypatch.setattr(index.client, "upsert", second_batch_fails)
    with pytest.raises(ConnectionError):
        vectors.add(index, "bbbb", vectors.pages(1, 12))  # 12 pages: two upsert batches
    assert index._stored_doc_ids() == {"aaaa"}
    assert [doc.doc_id for doc in index.documents()] == ["aaaa"]


def test_qdrant_points_without_a_committed_folder_are_ignored_then_removed_on_open(tmp_path):
    index = FACTORIES["qdrant-path"](tmp_path, RETRIEVER)
    vectors.add(index, "aaaa", vectors.pages(0, 1))
    # a crash between the upsert and the rename: points of "cccc", no folder
    orphan = Document("cccc", "cccc.pdf", 2, "2026-01-01")
    index._upsert(orphan, vectors.pages(5, 2))
    assert index._stored_doc_ids() == {"aaaa", "cccc"}
    assert [hit.doc_id for hit in index.search(vectors.pages(5, 2)[1], 1)] == ["aaaa"]
    index.close()
    reopened = FACTORIES["qdrant-path"](tmp_path, RETRIEVER)
    try:
        assert reopened._stored_doc_ids() == {"aaaa"}
        assert [doc.doc_id for doc in reopened.documents()] == ["aaaa"]
    finally:
        reopened.close()


def test_qdrant_collection_records_retriever_and_data_dir(tmp_path):
    location = str(tmp_path / "qdrant")
    index = QdrantIndex(tmp_path / "one", RETRIEVER, location)
    vectors.add(index, "aaaa", vectors.pages(0, 1))
    collection = index.collection
    assert collection.startswith("visual-rag-tiny-colqwen2-")
    meta = index.client.get_collection(collection).config.metadata
    assert meta["retriever"] == RETRIEVER
    assert index.client.retrieve(collection, [point_id("aaaa", 1)])[0].payload == {
        "doc_id": "aaaa",
        "name": "aaaa.pdf",
        "page_number": 1,
    }
    index.close()
    with pytest.raises(IndexMismatchError, match="belongs to another data dir"):
        QdrantIndex(tmp_path / "two", RETRIEVER, location, collection=collection)


def test_qdrant_pooled_vectors_are_stored_once_chosen_and_required_to_prefetch(tmp_path):
    pooled = QdrantIndex(tmp_path / "a", RETRIEVER, str(tmp_path / "qa"), pooled=2)
    vectors.add(pooled, "aaaa", vectors.pages(0, 2))
    points = pooled.client.retrieve(pooled.collection, [point_id("aaaa", 2)], with_vectors=True)
    assert len(points[0].vector["original"]) == 13 and len(points[0].vector["pooled"]) == 6
    pooled.close()
    exact = QdrantIndex(tmp_path / "a", RETRIEVER, str(tmp_path / "qa"))  # exact over a pooled one
    try:
        assert exact.pool_factor == 2 and not exact.use_pooled
        assert exact.search(vectors.pages(0, 2)[1], 1)[0].page_number == 2
    finally:
        exact.close()
    plain = QdrantIndex(tmp_path / "b", RETRIEVER, str(tmp_path / "qb"))
    vectors.add(plain, "aaaa", vectors.pages(0, 1))
    plain.close()
    with pytest.raises(IndexMismatchError, match="without pooled vectors"):
        QdrantIndex(tmp_path / "b", RETRIEVER, str(tmp_path / "qb"), pooled=2)


def test_qdrant_in_memory_vectors_do_not_outlive_the_process(tmp_path):
    index = QdrantIndex(tmp_path / "index", RETRIEVER, ":memory:")
    vectors.add(index, "aaaa", vectors.pages(0, 1))
    index.close()
    assert QdrantIndex(tmp_path / "index", RETRIEVER, ":memory:").documents() == []
    with pytest.raises(IndexMismatchError, match="index format"):
        LocalIndex(tmp_path / "index", RETRIEVER)  # and a local index refuses the folder


# -- choosing the index ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("local", ("local", None)),
        ("qdrant://localhost:6333", ("qdrant", "http://localhost:6333")),
        ("qdrant://qdrant", ("qdrant", "http://qdrant:6333")),
        ("qdrants://xyz.cloud.qdrant.io:6333/", ("qdrant", "https://xyz.cloud.qdrant.io:6333")),
        ("qdrant://[::1]", ("qdrant", "http://[::1]:6333")),
        ("qdrant::memory:", ("qdrant", ":memory:")),
        ("qdrant:/var/lib/qdrant", ("qdrant", "/var/lib/qdrant")),
        ("qdrant:data/qdrant", ("qdrant", "data/qdrant")),
        ("qdrant:https://db.example:443", ("qdrant", "https://db.example:443")),
    ],
)
def test_parse_index(spec, expected):
    assert parse_index(spec) == expected


@pytest.mark.parametrize("spec", ["", "qdrant", "qdrant:", "qdrant://", "qdrant://h:1/x", "faiss"])
def test_parse_index_refuses_other_values(spec):
    with pytest.raises(ConfigError, match="RAG_INDEX"):
        parse_index(spec)


def test_open_index_picks_the_backend(tmp_path):
    settings = Settings(data_dir=tmp_path, retriever=RETRIEVER, rerank=100, binary_prefilter=4)
    local = open_index(settings)
    assert isinstance(local, LocalIndex) and (local.rerank, local.prefilter) == (100, 4)
    environ = {"RAG_INDEX": "qdrant::memory:", "RAG_QDRANT_COLLECTION": "team", "RAG_RERANK": "60"}
    environ["RAG_QDRANT_API_KEY"] = "s3cret"
    settings = Settings.from_env(environ, data_dir=tmp_path / "q", retriever=RETRIEVER)
    assert "s3cret" not in repr(settings)  # settings are logged; the key is not
    index = open_index(settings)
    try:
        assert isinstance(index, QdrantIndex) and index.root == tmp_path / "q" / "index"
        assert (index.collection, index.prefetch, index.use_pooled) == ("team", 60, False)
    finally:
        index.close()
    with pytest.raises(ConfigError, match="RAG_INDEX_MODE=binary"):
        open_index(replace(settings, index_mode="binary"))


def test_pages_staged_on_disk_are_added_like_a_list(make_index, tmp_path):
    index = make_index()
    pages = vectors.pages(3, 3)
    staged = StagedPages(tmp_path / "vectors.staged")
    staged.append(pages[:1])
    staged.append(pages[1:])
    vectors.add(index, "aaaa", staged)
    query = pages[2][:4]
    expected = _expected(query, {"aaaa": pages})
    hits = index.search(query, k=3)
    assert (hits[0].doc_id, hits[0].page_number) == ("aaaa", 3)
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.doc_id, hit.page_number], abs=1e-2)
    torch.testing.assert_close(index.page_embedding("aaaa", 2), pages[1], atol=1e-2, rtol=0)
