"""rag.index.pooling equals colpali-engine's HierarchicalTokenPooler, page for page."""

from __future__ import annotations

import pytest
import torch

from rag.index.pooling import pool_page, pool_pages


def _clustered_page(seed: int, n_tokens: int, dim: int = 64, topics: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(topics, dim, generator=generator)
    owner = torch.randint(0, topics, (n_tokens,), generator=generator)
    tokens = centres[owner] + 0.5 * torch.randn(n_tokens, dim, generator=generator)
    return torch.nn.functional.normalize(tokens, dim=-1)


@pytest.mark.parametrize(("n_tokens", "pool_factor"), [(97, 3), (40, 2), (200, 4), (5, 3)])
def test_equals_hierarchical_token_pooler(n_tokens, pool_factor):
    from colpali_engine.compression.token_pooling import HierarchicalTokenPooler

    page = _clustered_page(n_tokens, n_tokens)
    expected = HierarchicalTokenPooler().pool_embeddings([page], pool_factor=pool_factor)[0]
    ours = pool_page(page, pool_factor)
    assert ours.shape == expected.shape
    assert ours.shape[0] <= max(n_tokens // pool_factor, 1)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_edge_cases_keep_every_page():
    one_row = torch.tensor([[3.0, 4.0]])
    page = _clustered_page(1, 30)
    pooled = pool_pages([one_row, page.to(torch.bfloat16)], pool_factor=3)
    torch.testing.assert_close(pooled[0], torch.tensor([[0.6, 0.8]]))  # normalised, kept
    assert pooled[1].dtype == torch.float32 and pooled[1].shape[0] <= 10
    torch.testing.assert_close(pooled[1].norm(dim=-1), torch.ones(pooled[1].shape[0]))
    torch.testing.assert_close(pool_page(page, 1), page)  # a factor of 1 changes nothing
