"""MaxSim on hand-made vectors, and equality with colpali-engine's score_multi_vector."""

from __future__ import annotations

import pytest
import torch

from rag.index import scoring
from rag.index.scoring import PackedPages, maxsim, maxsim_packed, maxsim_packed_many, top_k


def test_maxsim_by_hand():
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    page_a = torch.tensor([[0.9, 0.1], [0.1, 0.2]])  # 0.9 + 0.2
    page_b = torch.tensor([[0.3, 0.8]])  # 0.3 + 0.8
    packed = PackedPages.from_pages([page_a, page_b], torch.float32)
    assert maxsim_packed(query, packed).tolist() == pytest.approx([1.1, 1.1])
    assert float(maxsim(query, page_a)) == pytest.approx(1.1)


def test_each_query_token_takes_its_own_best_patch():
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    page = torch.tensor([[0.5, 0.0], [0.7, 0.0], [-1.0, 0.0]])
    packed = PackedPages.from_pages([page], torch.float32)
    assert maxsim_packed(query, packed).item() == pytest.approx(1.4)


def test_negative_similarities_are_not_clipped_by_padding():
    # Variable-length pages are packed, not zero-padded: a page whose best match is negative
    # keeps its negative score instead of a padded zero.
    query = torch.tensor([[1.0, 0.0]])
    short = torch.tensor([[-0.5, 0.0]])
    long = torch.tensor([[-0.9, 0.0], [-0.8, 0.0], [-0.7, 0.0]])
    packed = PackedPages.from_pages([short, long], torch.float32)
    assert maxsim_packed(query, packed).tolist() == pytest.approx([-0.5, -0.7])


def _random_pages(seed: int, n_pages: int = 12, dim: int = 128) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(20, 90, (n_pages,), generator=generator)
    pages = [torch.randn(int(n), dim, generator=generator) for n in lengths]
    return [torch.nn.functional.normalize(page, dim=-1) for page in pages]


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_equals_colpali_engine_score_multi_vector(dtype, tolerance):
    from colpali_engine.utils.processing_utils import BaseVisualRetrieverProcessor

    pages = _random_pages(0)
    queries = [torch.nn.functional.normalize(torch.randn(n, 128), dim=-1) for n in (5, 17, 23)]
    reference = BaseVisualRetrieverProcessor.score_multi_vector(queries, pages, device="cpu")
    packed = PackedPages.from_pages(pages, dtype)
    ours = torch.stack([maxsim_packed(query, packed) for query in queries])
    assert ours.shape == reference.shape == (3, len(pages))
    torch.testing.assert_close(ours, reference.float(), atol=tolerance * 20, rtol=tolerance)
    assert ours.argmax(dim=1).tolist() == reference.argmax(dim=1).tolist()


def test_chunking_does_not_change_scores(monkeypatch):
    pages = _random_pages(1)
    query = torch.nn.functional.normalize(torch.randn(9, 128), dim=-1)
    packed = PackedPages.from_pages(pages, torch.float32)
    whole = maxsim_packed(query, packed)
    monkeypatch.setattr(scoring, "CHUNK_ELEMENTS", 1)  # one page per step
    torch.testing.assert_close(maxsim_packed(query, packed), whole)
    for chunk in (1, scoring.GPU_CHUNK_ELEMENTS):  # one page, every page per step
        many = scoring.maxsim_packed_many([query, query[:3]], packed, chunk_elements=chunk)
        torch.testing.assert_close(many[0], whole)
        torch.testing.assert_close(many[1], maxsim_packed(query[:3], packed))


def test_buckets_pad_pages_without_changing_scores():
    # Lengths on both sides of bucket edges, in shuffled order: every score equals the
    # reference, and the rows come back in the caller's order.
    edge = scoring.BUCKET_TOKENS
    lengths = [edge + 1, 1, edge, 3 * edge - 1, edge - 1, 2, 2 * edge]
    generator = torch.Generator().manual_seed(3)
    pages = [torch.randn(n, 16, generator=generator) for n in lengths]
    query = torch.randn(4, 16, generator=generator)
    packed = PackedPages.from_pages(pages, torch.float32)
    assert len(packed.buckets) == 3  # padded to 32, 64 and 96 tokens
    assert sorted(r for b in packed.buckets for r in b.rows.tolist()) == list(range(len(pages)))
    reference = torch.stack([maxsim(query, page) for page in pages])
    torch.testing.assert_close(maxsim_packed(query, packed), reference)


def test_equal_length_pages_are_laid_out_as_a_view():
    flat = torch.randn(5 * 7, 8)
    packed = PackedPages.from_flat(flat, [7] * 5)
    assert packed.buckets[0].vectors.data_ptr() == flat.data_ptr()
    query = torch.randn(3, 8)
    expected = maxsim_packed(query, PackedPages.from_pages(list(flat.split(7))))
    torch.testing.assert_close(maxsim_packed(query, packed), expected)
    mixed = PackedPages.from_flat(flat, [5, 30])
    torch.testing.assert_close(
        maxsim_packed(query, mixed), torch.stack([maxsim(query, flat[:5]), maxsim(query, flat[5:])])
    )


def test_a_page_without_vectors_is_refused():
    with pytest.raises(ValueError, match="page 1 has no vectors"):
        PackedPages.from_pages([torch.randn(2, 4), torch.empty(0, 4)])


def test_top_k_orders_best_first_and_caps_k():
    scores = torch.tensor([0.2, 0.9, 0.5, 0.9])
    assert top_k(scores, 3) == [(1, pytest.approx(0.9)), (3, pytest.approx(0.9)), (2, 0.5)]
    assert len(top_k(scores, 10)) == 4
    assert top_k(torch.tensor([]), 3) == []


def test_empty_pack_scores_nothing():
    packed = PackedPages.from_pages([])
    assert packed.n_pages == 0
    assert maxsim_packed_many([torch.randn(2, 4)], packed).shape == (1, 0)


def test_many_queries_in_one_pass_equal_one_at_a_time(monkeypatch):
    pages = _random_pages(2)
    packed = PackedPages.from_pages(pages, torch.float32)
    queries = [torch.nn.functional.normalize(torch.randn(n, 128), dim=-1) for n in (3, 11, 20)]
    monkeypatch.setattr(scoring, "CHUNK_ELEMENTS", 34 * 100)  # a few pages per chunk
    together = maxsim_packed_many(queries, packed)
    assert together.shape == (3, len(pages))
    for row, query in enumerate(queries):
        torch.testing.assert_close(together[row], maxsim_packed(query, packed))
        reference = torch.stack([maxsim(query, page) for page in pages])
        torch.testing.assert_close(together[row], reference, atol=1e-4, rtol=1e-4)


def test_a_workspace_layout_equals_a_fresh_one_and_reuses_its_memory():
    generator = torch.Generator().manual_seed(3)
    pages = [torch.randn(n, 16, generator=generator) for n in (5, 40, 33, 7)]
    query = torch.randn(6, 16, generator=generator)
    workspace = scoring.Workspace()
    fresh = maxsim_packed(query, PackedPages.from_pages(pages, torch.bfloat16))
    reused = maxsim_packed(query, PackedPages.from_pages(pages, torch.bfloat16, workspace))
    assert torch.equal(fresh, reused)
    address = workspace.take(1, torch.bfloat16, "cpu").data_ptr()
    smaller = PackedPages.from_pages(pages[:2], torch.bfloat16, workspace)
    assert smaller.buckets[0].vectors.data_ptr() == address  # same memory, not a new buffer
    assert torch.equal(maxsim_packed(query, smaller), fresh[:2])
    as_fp32 = PackedPages.from_pages(pages * 3, torch.float32, workspace)  # grows
    assert torch.allclose(
        maxsim_packed(query, as_fp32),
        torch.cat([maxsim_packed(query, PackedPages.from_pages(pages))] * 3),
    )


def test_pages_laid_out_for_another_device_go_through_blocks_unchanged(monkeypatch):
    # On a GPU the layout is built STAGE_PAGES pages at a time on the CPU, one copy per block;
    # here both sides are CPU tensors, so the staged fill is checked against the direct one.
    monkeypatch.setattr(scoring, "STAGE_PAGES", 2)
    generator = torch.Generator().manual_seed(5)
    pages = [torch.randn(n, 16, generator=generator) for n in (3, 7, 5, 7, 1)]
    direct = torch.empty(5, 32, 16, dtype=torch.bfloat16)
    staged = torch.empty_like(direct)
    scoring._fill(direct, pages, staged=False)
    scoring._fill(staged, pages, staged=True)
    assert torch.equal(direct, staged)
    packed = PackedPages.from_pages(pages, torch.bfloat16, device="cpu")
    vectors = sum(b.vectors.nelement() * b.vectors.element_size() for b in packed.buckets)
    assert PackedPages.layout_bytes(pages, torch.bfloat16) == vectors == 5 * 32 * 16 * 2
