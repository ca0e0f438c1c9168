"""Every retriever family, loaded through the app's own code from tiny real-architecture models."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image, ImageDraw

from devtools.tiny_models import RETRIEVERS
from rag.config import Settings
from rag.errors import ConfigError
from rag.models.retriever import Retriever
from tests.helpers.tiers import families

pytestmark = pytest.mark.models

FAMILY_OF = {"colpali_lora": "colpali"}


def page(size: tuple[int, int], seed: int) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for row in range(8):
        y = 40 + row * (size[1] - 80) // 8
        draw.rectangle([40 + seed * 7, y, size[0] - 60, y + 12], fill=(20 * row, 40, 90 + seed))
    return image


@pytest.fixture(scope="module", params=families(RETRIEVERS))
def retriever(request, tiny_models) -> Retriever:
    from rag.config import Settings

    settings = Settings(retriever=str(tiny_models / request.param), batch_size=3)
    loaded = Retriever.load(settings)
    assert loaded.family.name == FAMILY_OF.get(request.param, request.param)
    return loaded


def test_batched_pages_equal_pages_embedded_alone(retriever):
    pages = [page((595, 842), 0), page((842, 595), 1), page((600, 600), 2), page((500, 900), 3)]
    batched = retriever.embed_pages(pages)  # batch_size 3: two forward passes, padded
    assert len(batched) == 4
    # fp32: equal to 1e-4; bf16 (auto on a CPU with bf16): a padded batch's other matmul shapes
    # may round a value one bf16 step (2^-10 below 1) the other way
    tolerance = 1e-4 if retriever.model.dtype == torch.float32 else 2e-3
    for image, embedding in zip(pages, batched, strict=True):
        (alone,) = retriever.embed_pages([image])
        assert embedding.shape == alone.shape
        assert embedding.shape[1] == retriever.dim
        assert torch.isfinite(embedding).all()
        torch.testing.assert_close(embedding, alone, atol=tolerance, rtol=tolerance)


def test_query_rows_match_its_tokens(retriever):
    query = retriever.embed_query("What was the revenue in 2024?")
    assert query.shape == (
        len(retriever.query_token_ids("What was the revenue in 2024?")),
        retriever.dim,
    )
    assert torch.isfinite(query).all()
    norms = query.norm(dim=-1)
    # normalised in the compute dtype: bf16 (auto on a CPU with bf16) keeps 8 bits of mantissa
    tolerance = max(1e-3, torch.finfo(retriever.model.dtype).eps)
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("size", [(595, 842), (842, 595), (1200, 400), (400, 1200)])
def test_patch_grid_covers_the_page_tokens(retriever, size):
    image = page(size, 0)
    grid = retriever.patch_grid(image)
    (embedding,) = retriever.embed_pages([image])
    assert grid.mask.shape == (embedding.shape[0],)
    assert int(grid.mask.sum()) == grid.n_x * grid.n_y
    if (
        retriever.family.name != "colpali"
    ):  # ColPali squares every page; the others follow its shape
        assert grid.n_x >= grid.n_y if size[0] > size[1] else grid.n_x <= grid.n_y


def test_adapter_changes_the_base_model(tiny_models):
    from rag.config import Settings

    base = Retriever.load(Settings(retriever=str(tiny_models / "colpali")))
    adapted = Retriever.load(Settings(retriever=str(tiny_models / "colpali_lora")))
    image = page((595, 842), 0)
    assert not torch.allclose(base.embed_pages([image])[0], adapted.embed_pages([image])[0])


def test_bf16_on_cpu_gives_finite_close_embeddings(tiny_models):
    from rag.config import Settings

    settings = Settings(retriever=str(tiny_models / "colqwen2"), dtype="float32")
    fp32 = Retriever.load(settings)
    bf16 = Retriever.load(dataclasses.replace(settings, dtype="bfloat16"))
    assert (fp32.model.dtype, bf16.model.dtype) == (torch.float32, torch.bfloat16)
    image = page((595, 842), 0)
    a, b = fp32.embed_pages([image])[0], bf16.embed_pages([image])[0]
    assert b.dtype == torch.float32  # returned as fp32 whatever the compute dtype
    assert torch.nn.functional.cosine_similarity(a, b, dim=-1).min() > 0.95


def test_max_visual_tokens_caps_a_colqwen_page(tiny_models):
    page = Image.new("RGB", (700, 900), "white")
    settings = Settings(retriever=str(tiny_models / "colqwen2"))
    full = Retriever.load(settings)
    capped = Retriever.load(dataclasses.replace(settings, max_visual_tokens=12))
    full_grid, capped_grid = full.patch_grid(page), capped.patch_grid(page)
    assert capped_grid.n_x * capped_grid.n_y <= 12 < full_grid.n_x * full_grid.n_y
    (embedding,) = capped.embed_pages([page])
    assert embedding.shape[0] < full.embed_pages([page])[0].shape[0]
    # a budget above the checkpoint's own (80 cells) does not raise the page's resolution
    above = Retriever.load(dataclasses.replace(settings, max_visual_tokens=320))
    assert above.patch_grid(page).mask.sum() == full_grid.mask.sum()


@pytest.mark.parametrize("name", ["colidefics3", "colmodernvbert"])
def test_max_visual_tokens_caps_a_tiled_page(tiny_models, name):
    """colSmol / ColModernVBert: the budget sets the longest edge in whole tiles (16 tokens a
    tile in the tiny models), so any page, with its global view, stays within it."""
    settings = Settings(retriever=str(tiny_models / name))
    full = Retriever.load(settings)
    for page in (Image.new("RGB", (700, 900), "white"), Image.new("RGB", (900, 300), "white")):
        for budget, tiles in ((16 * 5, 2 * 2 + 1), (16 * 4, 1)):
            capped = Retriever.load(dataclasses.replace(settings, max_visual_tokens=budget))
            grid = capped.patch_grid(page)
            assert int(grid.mask.sum()) <= budget and grid.n_x * grid.n_y <= 4 * 16
            inputs = capped.preprocess([page])
            assert inputs["pixel_values"].shape[1] <= tiles
            (embedding,) = capped.embed_pages([page])
            assert embedding.shape[0] < full.embed_pages([page])[0].shape[0]


def test_colmodernvbert_drops_the_unread_pooling_head_and_keeps_its_vectors(
    tiny_models, monkeypatch
):
    from rag.models.families.colmodernvbert import ColModernVBert

    page = Image.new("RGB", (300, 400), "white")
    settings = Settings(retriever=str(tiny_models / "colmodernvbert"), dtype="float32")
    trimmed = Retriever.load(settings)
    assert not any(getattr(module, "use_head", False) for module in trimmed.model.modules())
    monkeypatch.setattr(ColModernVBert, "trim", lambda self, model: None)
    whole = Retriever.load(settings)
    assert any(getattr(module, "use_head", False) for module in whole.model.modules())
    assert sum(p.numel() for p in trimmed.model.parameters()) < sum(
        p.numel() for p in whole.model.parameters()
    )
    assert torch.equal(trimmed.embed_pages([page])[0], whole.embed_pages([page])[0])


def test_attention_kernels_give_the_same_embeddings(tiny_models):
    page = Image.new("RGB", (300, 400), "white")
    settings = Settings(retriever=str(tiny_models / "colqwen2"), dtype="float32")  # exact enough
    eager = Retriever.load(dataclasses.replace(settings, attn_implementation="eager"))
    sdpa = Retriever.load(dataclasses.replace(settings, attn_implementation="sdpa"))
    torch.testing.assert_close(eager.embed_pages([page])[0], sdpa.embed_pages([page])[0])
    assert eager.model.config._attn_implementation == "eager"


def test_flash_attention_without_its_package_is_one_clear_line(tiny_models):
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    settings = Settings(retriever=str(tiny_models / "colqwen2"))
    with pytest.raises(ConfigError, match="needs the flash-attn package"):
        Retriever.load(dataclasses.replace(settings, attn_implementation="flash_attention_2"))


def test_batch_size_is_sized_for_the_device_unless_set(tiny_models):
    from rag.models.batching import CPU_BATCH, MAX_BATCH, fit_batch, probe_page

    folder = str(tiny_models / "colqwen2")
    assert Settings().batch_size == 0  # auto by default
    auto = Retriever.load(Settings(retriever=folder)).batch_size
    if torch.cuda.is_available():  # probed on the GPU (benchmarks/gpu/run.sh tests)
        assert 1 <= auto <= MAX_BATCH
    else:
        assert auto == CPU_BATCH
    assert Retriever.load(Settings(retriever=folder, batch_size=7)).batch_size == 7
    with pytest.raises(ConfigError, match="RAG_BATCH_SIZE"):
        Settings.from_env({"RAG_BATCH_SIZE": "-1"}).validated()
    # the CUDA rule: what fits 80% of the free memory after the fixed part, capped
    gib = 2**30
    assert fit_batch(free_bytes=60 * gib, fixed_bytes=2 * gib, per_page_bytes=gib) == 46
    assert fit_batch(free_bytes=500 * gib, fixed_bytes=0, per_page_bytes=gib) == 64
    assert fit_batch(free_bytes=gib, fixed_bytes=2 * gib, per_page_bytes=gib) == 1
    letter = probe_page(dpi=144, max_pixels=12_000_000)
    assert letter.size == (1224, 1584)
    capped = probe_page(dpi=600, max_pixels=12_000_000)
    assert capped.size[0] * capped.size[1] <= 12_000_000 * 1.001
    assert abs(capped.size[0] / capped.size[1] - 8.5 / 11) < 0.01
