"""RAG_ATTN_IMPLEMENTATION=cpu_bf16 (rag.models.attention) and the row-major patch embeddings
(rag.models.row_major): the vision towers' attention in bf16 matmuls agrees with PyTorch's kernel,
every call it does not serve gets sdpa's result exactly, and the layout hook changes no value."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image, ImageDraw

from rag.config import Settings
from rag.errors import ConfigError
from rag.models import attention

sdpa = torch.nn.functional.scaled_dot_product_attention


def heads(batch=2, tokens=300, heads=4, width=32, scale=3.0, seed=0) -> list[torch.Tensor]:
    """query, key, value as transformers hands them over: (batch, heads, tokens, width) views
    of (batch, tokens, heads, width) projections; peaked scores, as trained models have."""
    generator = torch.Generator().manual_seed(seed)
    made = [torch.randn(batch, tokens, heads, width, generator=generator) for _ in range(3)]
    made[0] = made[0] * scale
    return [tensor.transpose(1, 2) for tensor in made]


class Module(torch.nn.Module):
    is_causal = False


def test_bf16_attention_agrees_with_pytorchs_kernel():
    query, key, value = heads()
    out = attention.bf16_attention(query, key, value)
    reference = sdpa(query, key, value).transpose(1, 2)
    assert out.shape == reference.shape == (2, 300, 4, 32) and out.dtype == torch.float32
    assert out.is_contiguous()
    cosine = torch.nn.functional.cosine_similarity(out, reference, dim=-1)
    assert cosine.min() > 0.995 and cosine.mean() > 0.9995
    scaled = attention.bf16_attention(query, key, value, scaling=0.05)
    assert (
        torch.nn.functional.cosine_similarity(
            scaled, sdpa(query, key, value, scale=0.05).transpose(1, 2), dim=-1
        ).min()
        > 0.995
    )
    assert not torch.allclose(scaled, out, atol=1e-3)  # the scaling is applied
    ones = attention.bf16_attention(*(tensor.bfloat16() for tensor in (query, key, value)))
    assert ones.dtype == torch.bfloat16


def test_the_long_unmasked_bidirectional_case_takes_the_bf16_path(monkeypatch):
    calls = []
    real = attention.bf16_attention
    monkeypatch.setattr(
        attention, "bf16_attention", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    query, key, value = heads()
    out, weights = attention.attention(Module(), query, key, value, None, scaling=0.1)
    assert calls == [1] and weights is None
    torch.testing.assert_close(out, real(query, key, value, 0.1))


def transformers_sdpa(*args, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(*args, **kwargs)[0]


@pytest.mark.parametrize(
    "case", ["mask", "causal", "causal module", "short", "grouped heads", "dropout"]
)
def test_what_it_does_not_serve_is_sdpas_result_exactly(case, monkeypatch):
    monkeypatch.setattr(attention, "bf16_attention", lambda *a, **k: pytest.fail("served"))
    query, key, value = heads(tokens=8 if case == "short" else 300)
    module, mask, options = Module(), None, {"scaling": 0.2}
    if case == "mask":
        mask = torch.ones(2, 1, 300, 300, dtype=torch.bool).tril()
    elif case == "causal":
        options["is_causal"] = True
    elif case == "causal module":
        module.is_causal = True
    elif case == "grouped heads":
        module.num_key_value_groups = 2
        key, value = key[:, :2], value[:, :2]
    if case == "dropout":
        torch.manual_seed(0)
        options["dropout"] = 0.5
    out, _ = attention.attention(module, query, key, value, mask, **options)
    if case == "dropout":
        torch.manual_seed(0)
    torch.testing.assert_close(
        out, transformers_sdpa(module, query, key, value, mask, **options), rtol=0, atol=0
    )


def test_it_is_refused_off_the_cpu_and_accepted_as_a_setting():
    from rag.models.checkpoints import attention_options

    with pytest.raises(ConfigError, match=r"^RAG_ATTN_IMPLEMENTATION=cpu_bf16 runs on the CPU"):
        attention_options("cpu_bf16", "cuda")
    assert attention_options("cpu_bf16", "cpu") == {}  # loaded as auto, then sdpa replaced
    assert Settings.from_env({"RAG_ATTN_IMPLEMENTATION": "cpu_bf16"}).attn_implementation == (
        "cpu_bf16"
    )


def test_the_cpu_profile_takes_it_where_the_cpu_has_bf16(monkeypatch):
    import rag.models.checkpoints

    for has_bf16, expected in ((True, "cpu_bf16"), (False, "auto")):
        monkeypatch.setattr(rag.models.checkpoints, "cpu_has_bf16", lambda has=has_bf16: has)
        assert Settings.from_env({"RAG_PROFILE": "cpu"}).attn_implementation == expected
        assert Settings.from_env({"RAG_PROFILE": "gpu"}).attn_implementation == "auto"
    overridden = Settings.from_env({"RAG_PROFILE": "cpu", "RAG_ATTN_IMPLEMENTATION": "sdpa"})
    assert overridden.attn_implementation == "sdpa"


def a_page() -> Image.Image:
    page = Image.new("RGB", (595, 842), "white")
    ImageDraw.Draw(page).rectangle([60, 80, 500, 300], fill="navy")
    ImageDraw.Draw(page).ellipse([100, 400, 400, 700], fill="darkred")
    return page


@pytest.mark.models
@pytest.mark.parametrize("family", ["colmodernvbert", "colidefics3", "colqwen2"])
def test_page_vectors_agree_with_sdpas(tiny_models, family, monkeypatch):
    """Through a whole retriever: the vision tower's attention takes the bf16 path (the tiny
    towers' tiles are short, so every length is served here) and the page vectors stay
    within a cosine of 0.999 of sdpa's."""
    from rag.models.retriever import Retriever

    settings = Settings(retriever=str(tiny_models / family), dtype="float32", device="cpu")
    reference = Retriever.load(dataclasses.replace(settings, attn_implementation="sdpa"))
    retriever = Retriever.load(dataclasses.replace(settings, attn_implementation="cpu_bf16"))
    assert retriever.model.config.vision_config._attn_implementation == "cpu_bf16"
    monkeypatch.setattr(attention, "MIN_TOKENS", 1)
    calls = []
    real = attention.bf16_attention
    monkeypatch.setattr(
        attention, "bf16_attention", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    (vectors,) = retriever.embed_pages([a_page()])
    assert calls
    (expected,) = reference.embed_pages([a_page()])
    assert vectors.shape == expected.shape
    assert torch.nn.functional.cosine_similarity(vectors, expected, dim=-1).min() > 0.999


@pytest.mark.models
def test_the_answer_agrees_and_still_streams(tiny_models, monkeypatch):
    from rag.models.answerer import Answerer, PageImage

    settings = Settings(
        generator=str(tiny_models / "idefics3"), dtype="float32", device="cpu", max_new_tokens=8
    )
    monkeypatch.setattr(attention, "MIN_TOKENS", 1)
    reference = Answerer.load(dataclasses.replace(settings, attn_implementation="sdpa"))
    generator = Answerer.load(dataclasses.replace(settings, attn_implementation="cpu_bf16"))
    pages = [PageImage("[a.pdf p.1]", a_page())]
    with torch.inference_mode():
        logits = generator.model(**generator.build_inputs("What?", pages)).logits[0, -1]
        expected = reference.model(**reference.build_inputs("What?", pages)).logits[0, -1]
    assert torch.nn.functional.cosine_similarity(logits, expected, dim=0) > 0.999
    assert "".join(generator.stream("What?", pages)) == generator.answer("What?", pages)


@pytest.mark.models
@pytest.mark.parametrize("family", ["colpali", "colidefics3", "colmodernvbert"])
def test_row_major_embeddings_change_no_value(tiny_models, family):
    """The hook makes the patch embeddings contiguous: the same vectors bit for bit, and
    loading twice hooks once."""
    from rag.models.retriever import Retriever
    from rag.models.row_major import row_major_embeddings

    settings = Settings(retriever=str(tiny_models / family), dtype="float32", device="cpu")
    retriever = Retriever.load(settings)
    embeddings = [
        module
        for module in retriever.model.modules()
        if type(module).__name__.endswith("VisionEmbeddings")
    ]
    assert embeddings and row_major_embeddings(retriever.model) == len(embeddings)
    assert all(len(module._forward_hooks) == 1 for module in embeddings)
    layouts = []
    watch = embeddings[0].register_forward_hook(
        lambda module, inputs, output: layouts.append(output.is_contiguous())
    )
    (vectors,) = retriever.embed_pages([a_page()])
    watch.remove()
    assert layouts == [True]
    for module in embeddings:
        module._forward_hooks.clear()
    watch = embeddings[0].register_forward_hook(
        lambda module, inputs, output: layouts.append(output.is_contiguous())
    )
    (plain,) = retriever.embed_pages([a_page()])
    assert layouts == [True, False]  # without the hook, width-major
    assert torch.equal(vectors, plain)


@pytest.mark.models
def test_parts_transformers_keeps_eager_stay_eager(tiny_models):
    """PaliGemma 2's Gemma 2 text attention soft-caps its scores, which sdpa cannot do, so
    transformers runs it eager: only the vision tower, on sdpa, takes the bf16 kernel."""
    from rag.models.answerer import Answerer, PageImage

    settings = Settings(
        generator=str(tiny_models / "paligemma2"),
        attn_implementation="cpu_bf16",
        device="cpu",
        max_new_tokens=4,
    )
    generator = Answerer.load(settings)
    config = generator.model.config
    assert config.vision_config._attn_implementation == "cpu_bf16"
    assert config.text_config._attn_implementation == "eager"
    pages = [PageImage("[a.pdf p.1]", a_page())]
    assert "".join(generator.stream("What?", pages)) == generator.answer("What?", pages)
