"""LocalIndex: persistence, restart, header checks, atomic add/delete, MaxSim search."""

from __future__ import annotations

import json
import os

import pytest
import torch

from rag.errors import DocumentNotFoundError, IndexMismatchError
from rag.index import LocalIndex
from rag.index.scoring import maxsim
from tests.helpers import vectors

RETRIEVER = "tiny/colqwen2"


# The model's device: on a GPU machine (benchmarks/gpu/run.sh tests) search runs there.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def test_add_search_and_scores_equal_reference_maxsim(tmp_path):
    index = LocalIndex(tmp_path, RETRIEVER, dtype="float32", device=DEVICE)
    pages_a, pages_b = vectors.pages(0, 3), vectors.pages(1, 2)
    vectors.add(index, "aaaa", pages_a)
    vectors.add(index, "bbbb", pages_b)
    query = pages_b[1][:4]  # four of page b2's own vectors: b2 must win
    hits = index.search(query, k=5)
    assert next((h.doc_id, h.page_number) for h in hits) == ("bbbb", 2)
    assert len(hits) == 5
    expected = {("aaaa", i + 1): float(maxsim(query, p)) for i, p in enumerate(pages_a)}
    expected |= {("bbbb", i + 1): float(maxsim(query, p)) for i, p in enumerate(pages_b)}
    for hit in hits:
        # fp32 vectors, summed in another order than the reference: scores agree to ~1e-3.
        assert hit.score == pytest.approx(expected[hit.doc_id, hit.page_number], abs=2e-3)
        assert hit.image_path.exists()
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].citation == "[bbbb.pdf p.2]"


def test_survives_restart_with_the_same_results(tmp_path):
    index = LocalIndex(tmp_path, RETRIEVER)
    vectors.add(index, "aaaa", vectors.pages(0, 3))
    vectors.add(index, "bbbb", vectors.pages(1, 2))
    query = vectors.pages(2, 1)[0][:5]
    before = index.search(query, 5)
    reopened = LocalIndex(tmp_path, RETRIEVER)
    assert reopened.documents() == index.documents()
    assert reopened.search(query, 5) == before
    torch.testing.assert_close(reopened.page_embedding("aaaa", 2), index.page_embedding("aaaa", 2))


def test_header_records_retriever_and_dim_and_refuses_a_mismatch(tmp_path):
    index = LocalIndex(tmp_path, RETRIEVER)
    vectors.add(index, "aaaa", vectors.pages(0, 1, dim=16))
    header = json.loads((tmp_path / "index.json").read_text())
    assert header["retriever"] == RETRIEVER and header["dim"] == 16 and header["version"] == 4
    assert (
        header["vectors"] == "bfloat16"
        and header["pool_factor"] is None
        and header["bits"] is False
    )
    with pytest.raises(IndexMismatchError, match="built with retriever 'tiny/colqwen2'"):
        LocalIndex(tmp_path, "vidore/colpali-v1.3")
    with pytest.raises(IndexMismatchError, match="16-d vectors"):
        vectors.add(index, "bbbb", vectors.pages(1, 1, dim=32))
    assert [d.doc_id for d in LocalIndex(tmp_path, RETRIEVER).documents()] == ["aaaa"]


def test_refuses_an_index_of_another_format_version(tmp_path):
    LocalIndex(tmp_path, RETRIEVER)
    (tmp_path / "index.json").write_text(json.dumps({"format": "x", "version": 99}))
    with pytest.raises(IndexMismatchError, match="index your PDFs again"):
        LocalIndex(tmp_path, RETRIEVER)


def test_delete_removes_document_files_and_results(tmp_path):
    index = LocalIndex(tmp_path, RETRIEVER)
    vectors.add(index, "aaaa", vectors.pages(0, 2))
    vectors.add(index, "bbbb", vectors.pages(1, 2))
    removed = index.delete("aaaa")
    assert removed.doc_id == "aaaa"
    assert not (tmp_path / "docs" / "aaaa").exists()
    assert {h.doc_id for h in index.search(vectors.pages(3, 1)[0], 10)} == {"bbbb"}
    with pytest.raises(DocumentNotFoundError):
        index.delete("aaaa")
    assert [d.doc_id for d in LocalIndex(tmp_path, RETRIEVER).documents()] == ["bbbb"]


def test_staging_left_by_a_killed_process_is_discarded_on_open(tmp_path):
    LocalIndex(tmp_path, RETRIEVER)
    leftover = tmp_path / ".staging" / "999999999-half-written"
    leftover.mkdir(parents=True)
    (leftover / "page-0001.png").write_bytes(b"partial")
    mine = tmp_path / ".staging" / f"{os.getpid()}-in-progress"
    mine.mkdir()
    index = LocalIndex(tmp_path, RETRIEVER)
    assert not leftover.exists()  # its process is gone
    assert mine.exists()  # a live process's work is left alone
    assert index.documents() == []


def test_another_process_sees_changes_without_restart(tmp_path):
    server = LocalIndex(tmp_path, RETRIEVER)
    assert server.documents() == []
    cli = LocalIndex(tmp_path, RETRIEVER)
    vectors.add(cli, "aaaa", vectors.pages(0, 2))
    assert [d.doc_id for d in server.documents()] == ["aaaa"]
    assert server.search(vectors.pages(1, 1)[0], 1)[0].doc_id == "aaaa"
    cli.delete("aaaa")
    assert server.documents() == []
    assert server.search(vectors.pages(1, 1)[0], 1) == []


def test_an_index_of_the_previous_format_is_refused_with_a_clear_message(tmp_path):
    for version in (1, 2):
        old = {"format": "visual-rag-local-index", "version": version, "retriever": RETRIEVER}
        (tmp_path / "index.json").write_text(json.dumps({**old, "dim": 16}))
        with pytest.raises(IndexMismatchError, match=rf"v{version} is not .* v4\b.* PDFs again"):
            LocalIndex(tmp_path, RETRIEVER)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_vectors_are_stored_in_the_dtype_they_are_searched_in(tmp_path, dtype):
    pages = vectors.pages(0, 3)
    index = LocalIndex(tmp_path, RETRIEVER, dtype=dtype)
    vectors.add(index, "aaaa", pages)
    stored = torch.cat([index.page_embedding("aaaa", n) for n in (1, 2, 3)])
    stored_dtype = getattr(torch, dtype)
    expected = torch.cat(pages).to(stored_dtype).float()
    assert torch.equal(stored, expected)  # exactly the searched values, no second rounding
    assert json.loads((tmp_path / "index.json").read_text())["vectors"] == dtype
    other = "float32" if dtype == "bfloat16" else "bfloat16"
    reopened = LocalIndex(tmp_path, RETRIEVER, dtype=other)  # searches convert; storage stays
    vectors.add(reopened, "bbbb", pages)
    assert torch.equal(reopened.page_embedding("bbbb", 2), pages[1].to(stored_dtype).float())


def test_any_search_mode_opens_any_index_except_pooled_without_its_vectors(tmp_path):
    """Every index keeps its vectors and their sign bits: exact, binary and auto search any of
    them without re-indexing; pooled search needs the pooled vectors of its factor."""
    pages = vectors.pages(0, 6, dim=128)
    vectors.add(LocalIndex(tmp_path, RETRIEVER, mode="binary"), "aaaa", pages)
    query = pages[3][:5]
    for mode in ("exact", "binary", "auto"):
        hits = LocalIndex(tmp_path, RETRIEVER, mode=mode, rerank=2).search(query, 2)
        assert (hits[0].doc_id, hits[0].page_number) == ("aaaa", 4)
    with pytest.raises(IndexMismatchError, match="keeps no pooled vectors: set RAG_INDEX_MODE"):
        LocalIndex(tmp_path, RETRIEVER, mode="pooled")
    pooled = tmp_path / "pooled"
    vectors.add(LocalIndex(pooled, RETRIEVER, mode="pooled", pool_factor=2), "bbbb", pages)
    with pytest.raises(IndexMismatchError, match=r"factor 2: .* RAG_POOL_FACTOR=2"):
        LocalIndex(pooled, RETRIEVER, mode="pooled", pool_factor=3)
    for mode in ("exact", "binary", "auto"):  # a pooled index is searchable every other way
        hits = LocalIndex(pooled, RETRIEVER, mode=mode).search(query, 1)
        assert (hits[0].doc_id, hits[0].page_number) == ("bbbb", 4)


def test_auto_mode_searches_exactly_then_binary_from_its_page_count(tmp_path):
    index = LocalIndex(tmp_path, RETRIEVER, mode="auto", auto_binary_pages=10, rerank=3)
    pages = vectors.pages(2, 14, dim=128)
    vectors.add(index, "aaaa", pages[:9])
    assert index.search(pages[4][:5], 1)[0].page_number == 5
    assert index.search_mode() == "exact"
    vectors.add(index, "bbbb", pages[9:])  # 14 pages: over the threshold, no re-indexing
    hits = index.search(pages[12][:5], 3)
    assert index.search_mode() == "binary"
    assert (hits[0].doc_id, hits[0].page_number) == ("bbbb", 4)
    for hit in hits:  # reranked exactly
        exact = maxsim(pages[12][:5], index.page_embedding(hit.doc_id, hit.page_number))
        assert hit.score == pytest.approx(float(exact), abs=2e-2)
    index.delete("bbbb")
    index.search(pages[4][:5], 1)
    assert index.search_mode() == "exact"


def test_vectors_whose_dimension_binary_cannot_pack_search_exactly_in_auto(tmp_path):
    index = LocalIndex(tmp_path, RETRIEVER, mode="auto", auto_binary_pages=1)
    pages = vectors.pages(3, 3, dim=80)  # not a multiple of 64: no sign bits kept
    vectors.add(index, "aaaa", pages)
    assert index.search(pages[1][:4], 1)[0].page_number == 2
    assert index.search_mode() == "exact"
    with pytest.raises(IndexMismatchError, match="no sign bits"):
        LocalIndex(tmp_path, RETRIEVER, mode="binary")


def test_binary_mode_with_the_prefilter_pass_finds_the_page_and_scores_it_exactly(tmp_path):
    pages = vectors.pages(
        5, 30, dim=128
    )  # prefilter 2 x rerank 3 = 6 <= 30 / 4: the 64-bit pass runs
    index = LocalIndex(tmp_path, RETRIEVER, mode="binary", rerank=3, prefilter=2)
    vectors.add(index, "aaaa", pages[:12])
    vectors.add(index, "bbbb", pages[12:])
    for target in (4, 20):
        query = pages[target][2:8]
        hits = index.search(query, 3)
        doc_id, number = ("aaaa", target + 1) if target < 12 else ("bbbb", target - 11)
        assert (hits[0].doc_id, hits[0].page_number) == (doc_id, number)
        for hit in hits:
            exact = maxsim(query, index.page_embedding(hit.doc_id, hit.page_number))
            assert hit.score == pytest.approx(float(exact), abs=2e-2)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("mode", ["pooled", "binary"])
def test_a_scope_larger_than_the_rerank_runs_both_stages_within_it(tmp_path, mode):
    """The first stage (pooled or binary) picks candidates among the scope's pages only."""
    index = LocalIndex(tmp_path, RETRIEVER, mode=mode, rerank=3, prefilter=1, pool_factor=2)
    docs = {f"d{i}": vectors.pages(i, 4, dim=64) for i in range(6)}  # binary packs 64 dims a word
    for doc_id, pages in docs.items():
        vectors.add(index, doc_id, pages)
    scope = {"d1", "d3", "d4"}  # 12 pages: more than the 3 reranked
    for _ in range(5):
        query = torch.nn.functional.normalize(torch.randn(6, 64), dim=-1)
        hits = index.search(query, 4, scope=scope)
        assert len(hits) == 4 and {hit.doc_id for hit in hits} <= scope
        exact = {
            (doc_id, number): float(maxsim(query, page))
            for doc_id in scope
            for number, page in enumerate(docs[doc_id], start=1)
        }
        for hit in hits:  # reranked exactly
            assert hit.score == pytest.approx(exact[hit.doc_id, hit.page_number], abs=2e-2)


@pytest.mark.parametrize("mode", ["exact", "binary", "auto"])
def test_vectors_of_any_width_are_stored_and_searched(tmp_path, mode):
    """ColQwen3 gives 320-d vectors (5 words of sign bits: the binary kernel's general path)."""
    pages = vectors.pages(4, 8, dim=320)
    index = LocalIndex(tmp_path, RETRIEVER, mode=mode, rerank=3, auto_binary_pages=4)
    vectors.add(index, "aaaa", pages)
    hits = index.search(pages[6][:5], 3)
    assert (hits[0].doc_id, hits[0].page_number) == ("aaaa", 7)
    for hit in hits:
        exact = maxsim(pages[6][:5], index.page_embedding(hit.doc_id, hit.page_number))
        assert hit.score == pytest.approx(float(exact), abs=2e-2)
    assert index.dim == 320 and index.page_embedding("aaaa", 1).shape == pages[0].shape


def test_tag_changes_of_two_writers_are_both_kept(tmp_path):
    """Each change reads the record under the writer lock: a tag another process added after
    this one last read the folder is not lost."""
    server, cli = LocalIndex(tmp_path, RETRIEVER), LocalIndex(tmp_path, RETRIEVER)
    vectors.add(server, "aaaa", vectors.pages(0, 1))
    assert server.get("aaaa").tags == ()  # the server has read the record
    cli.change_tags("aaaa", add=["finance"])
    assert server.change_tags("aaaa", add=["2024"]).tags == ("2024", "finance")
    assert cli.get("aaaa").tags == ("2024", "finance")  # and the other process sees it
