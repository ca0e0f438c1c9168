"""The answerer's page cache: a follow-up over the same pages, or a page retrieved again, skips
the vision encoder and gets the same answer, for every answerer family."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image, ImageDraw

from devtools.tiny_models import GENERATORS
from rag.chat import Turn
from rag.config import Settings
from rag.models.answerer import Answerer, PageImage
from rag.models.page_cache import PageCache, image_key
from tests.helpers.tiers import families

pytestmark = pytest.mark.models


def page(label: str, colour: str, size=(595, 842)) -> PageImage:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle([60, 80, 400, 300], fill=colour)
    return PageImage(label, image)


FIRST, SECOND, THIRD = (
    page("[a.pdf p.1]", "navy"),
    page("[b.pdf p.2]", "darkred", (842, 595)),
    page("[c.pdf p.3]", "darkgreen"),
)


@pytest.fixture(scope="module", params=families(GENERATORS))
def pair(request, tiny_models) -> tuple[Answerer, Answerer]:
    """The same answerer loaded twice: with the page cache, and without it."""
    settings = Settings(
        generator=str(tiny_models / request.param),
        max_new_tokens=10,
        answer_min_pixels=28 * 28 * 4,
        answer_max_pixels=28 * 28 * 64,
    )
    cached = Answerer.load(settings)
    plain = Answerer.load(dataclasses.replace(settings, answer_cache_mb=0))
    assert cached.page_cache is not None and plain.page_cache is None
    return cached, plain


def encoder_calls(generator: Answerer) -> list[int]:
    """Counts the vision encoder's runs (the cache's misses must be the only ones)."""
    calls = []
    base = generator.model.base_model
    real = base.get_image_features

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    base.get_image_features = counted
    return calls


def test_cached_pages_give_the_same_answer_and_skip_the_encoder(pair):
    cached, plain = pair
    cached.page_cache.clear()
    calls = encoder_calls(cached)
    try:
        first = cached.answer("What was the revenue?", [FIRST, SECOND])
        assert first == plain.answer("What was the revenue?", [FIRST, SECOND])
        assert len(calls) == 2  # each page encoded once, alone

        history = [Turn("What was the revenue?", first)]
        follow_up = cached.answer("And in 2023?", [FIRST, SECOND], history=history)
        assert follow_up == plain.answer("And in 2023?", [FIRST, SECOND], history=history)
        assert len(calls) == 2  # a follow-up over the same pages encodes nothing

        again = [THIRD, SECOND]  # a page retrieved again, beside a new one
        streamed = "".join(cached.stream("Which chart?", again))
        assert streamed == plain.answer("Which chart?", again)
        assert len(calls) == 3  # only the new page
    finally:
        del cached.model.base_model.get_image_features
    assert cached.page_cache.hits == 3 and cached.page_cache.misses == 3


def test_the_inputs_equal_the_encoded_pixels(pair):
    """What the model reads is the same either way: the cached encodings equal what its own
    forward computes from the pixels (the logits of the first token agree)."""
    cached, plain = pair
    with torch.inference_mode():
        a = cached.model(**cached.build_inputs("What?", [FIRST, THIRD])).logits[0, -1]
        b = plain.model(**plain.build_inputs("What?", [FIRST, THIRD])).logits[0, -1]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_a_page_is_known_by_its_pixels_and_its_budget():
    key = image_key(FIRST.image, 1, 2)
    assert key == image_key(FIRST.image.copy(), 1, 2)
    assert key != image_key(FIRST.image, 1, 3)
    assert key != image_key(SECOND.image, 1, 2)


def entry(numbers: int) -> dict:
    return {"class": object, "pooler_output": torch.zeros(numbers, dtype=torch.float32)}


def test_the_cache_is_bounded_in_bytes_least_recently_used_out():
    cache = PageCache(max_bytes=100 * 4)
    cache.put("a", entry(40))
    cache.put("b", entry(40))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", entry(40))  # 120 numbers: b, the least recent, goes
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.bytes == 80 * 4 and len(cache) == 2
    cache.put("huge", entry(101))  # larger than the whole cache: not kept, nothing dropped
    assert cache.get("huge") is None and len(cache) == 2


def test_no_cache_when_turned_off_or_the_family_cannot_take_encoded_pages(tiny_models):
    settings = Settings(generator=str(tiny_models / "idefics3"))
    assert Answerer.load(settings).page_cache is not None
    assert Answerer.load(dataclasses.replace(settings, answer_cache_mb=0)).page_cache is None
    family = Answerer.load(settings).family
    try:
        family.cache_pages = False
        generator = Answerer.load(settings)
    finally:
        del family.cache_pages
    assert generator.page_cache is None
    assert "pixel_values" in generator.build_inputs("What?", [FIRST])
