"""Heatmap geometry on hand-built embeddings, query-token filtering, overlay rendering."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from devtools.tiny_models import RETRIEVERS
from rag.config import Settings
from rag.models.retriever import Retriever
from rag.view.heatmaps import QueryToken, meaningful_tokens, page_maps
from rag.view.overlay import render_overlay
from tests.helpers.tiers import families

QUESTION = "What was the revenue in 2024?"


@pytest.fixture(scope="module", params=families(f for f in RETRIEVERS if f != "colpali_lora"))
def retriever(request, tiny_models) -> Retriever:
    return Retriever.load(Settings(retriever=str(tiny_models / request.param)))


def token_cells(retriever: Retriever, n_x: int, n_y: int) -> list[tuple[int, int]]:
    """(row, col) of each image token in the order the processor emits them: row-major over
    the page for ColPali/ColQwen; for tiled pages (Idefics3-style processors), tile by tile
    (tiles row-major), row-major inside each tile."""
    if not retriever.family.tiled:
        return [(k // n_x, k % n_x) for k in range(n_x * n_y)]
    side = math.isqrt(retriever.processor.image_seq_len)
    cells = []
    for tile_row in range(n_y // side):
        for tile_col in range(n_x // side):
            for r in range(side):
                for c in range(side):
                    cells.append((tile_row * side + r, tile_col * side + c))
    return cells


@pytest.mark.models
@pytest.mark.parametrize("size", [(595, 842), (842, 595)], ids=["portrait", "landscape"])
def test_a_token_matching_the_top_left_quadrant_lights_the_top_left(retriever, size):
    image = Image.new("RGB", size, "white")
    grid = retriever.patch_grid(image)
    dim = retriever.dim
    e_match, e_other, e_none = torch.eye(dim)[:3]
    page = e_other.repeat(grid.mask.shape[0], 1)  # text tokens and other patches
    image_rows = grid.mask.nonzero().flatten()
    cells = token_cells(retriever, grid.n_x, grid.n_y)
    assert len(cells) == len(image_rows)
    top_left = {
        (r, c) for r, c in cells if (r + 0.5) / grid.n_y < 0.5 and (c + 0.5) / grid.n_x < 0.5
    }
    for row, cell in zip(image_rows.tolist(), cells, strict=True):
        if cell in top_left:
            page[row] = e_match
    query = torch.stack([e_none, e_match])  # token 0 matches nothing, token 1 the quadrant
    maps = page_maps(retriever, image, page, query, [QueryToken(1, "revenue")])

    token_map = maps.tokens[0].grid
    assert token_map.shape == (grid.n_y, grid.n_x)
    for r in range(grid.n_y):
        for c in range(grid.n_x):
            assert token_map[r, c] == pytest.approx(1.0 if (r, c) in top_left else 0.0)
    torch.testing.assert_close(maps.query, token_map)  # one token: the query map is its map

    overlay = render_overlay(image, token_map)
    assert overlay.size == image.size
    change = quadrant_change(image, overlay)
    assert change["top_left"] > 10 * max(change["top_right"], change["bottom_left"], 1e-3)
    assert change["bottom_right"] < 1e-3 + change["top_left"] / 10


def quadrant_change(before: Image.Image, after: Image.Image) -> dict[str, float]:
    """Mean absolute pixel change in the middle of each quadrant (away from blurred edges)."""
    a = torch.tensor(list(before.convert("L").getdata()), dtype=torch.float32)
    b = torch.tensor(list(after.convert("L").getdata()), dtype=torch.float32)
    diff = (a - b).abs().reshape(before.height, before.width)
    h, w = before.height, before.width

    def middle(top: int, left: int) -> float:
        return float(
            diff[top + h // 8 : top + 3 * h // 8, left + w // 8 : left + 3 * w // 8].mean()
        )

    return {
        "top_left": middle(0, 0),
        "top_right": middle(0, w // 2),
        "bottom_left": middle(h // 2, 0),
        "bottom_right": middle(h // 2, w // 2),
    }


@pytest.mark.models
def test_meaningful_tokens_drop_prefix_padding_and_punctuation(retriever):
    ids = retriever.query_token_ids(QUESTION)
    tokens = meaningful_tokens(retriever.processor.tokenizer, ids, QUESTION)
    assert "".join(token.text for token in tokens) == "Whatwastherevenuein2024"
    assert all(0 <= token.index < len(ids) for token in tokens)
    assert len(tokens) < len(ids)  # prefix, augmentation and "?" are gone


def test_overlay_places_cell_zero_zero_top_left():
    page = Image.new("RGB", (300, 200), "white")  # landscape: 3 columns, 2 rows
    grid = torch.zeros(2, 3)
    grid[0, 0] = 1.0
    overlay = render_overlay(page, grid)
    change = quadrant_change(page, overlay)
    assert change["top_left"] > 10 * max(change["top_right"], change["bottom_left"])
    constant = render_overlay(page, torch.ones(2, 3))
    assert constant.tobytes() == page.tobytes()  # a flat map highlights nothing
