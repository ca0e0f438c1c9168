"""Every answerer family through the app's own code, on tiny real-architecture models."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image, ImageDraw

from devtools.tiny_models import GENERATORS
from rag.chat import QUESTION_CHARS, Turn
from rag.config import Settings
from rag.models.answerer import Answerer, PageImage
from tests.helpers.tiers import families

pytestmark = pytest.mark.models

FAMILY_OF = {
    "qwen2_vl": "qwen_vl",
    "qwen2_5_vl": "qwen_vl",
    "idefics3": "idefics3",
    "paligemma": "paligemma",
    "qwen3_vl": "qwen3_vl",
    "qwen3_vl_moe": "qwen3_vl",
    "paligemma2": "paligemma",
    "smolvlm2": "idefics3",
    "gemma3": "gemma3",
    "qwen3_5": "qwen3_5",
}


def pages() -> list[PageImage]:
    portrait = Image.new("RGB", (595, 842), "white")
    ImageDraw.Draw(portrait).rectangle([60, 80, 500, 120], fill="navy")
    landscape = Image.new("RGB", (842, 595), "white")
    ImageDraw.Draw(landscape).ellipse([100, 100, 400, 300], fill="darkred")
    return [PageImage("[report.pdf p.1]", portrait), PageImage("[slides.pdf p.3]", landscape)]


@pytest.fixture(scope="module", params=families(GENERATORS))
def generator(request, tiny_models) -> Answerer:
    settings = Settings(
        generator=str(tiny_models / request.param),
        max_new_tokens=12,
        answer_min_pixels=28 * 28 * 4,
        answer_max_pixels=28 * 28 * 64,
    )
    loaded = Answerer.load(settings)
    assert loaded.family.name == FAMILY_OF[request.param]
    return loaded


def test_stream_equals_the_whole_answer(generator):
    whole = generator.answer("What was the revenue?", pages())
    pieces = list(generator.stream("What was the revenue?", pages()))
    assert "".join(pieces) == whole
    assert all(pieces)  # no empty pieces are yielded


def test_the_prompt_shows_every_page_with_its_citation(generator):
    inputs = generator.build_inputs("What was the revenue?", pages())
    prompt = generator.processor.tokenizer.decode(inputs["input_ids"][0])
    assert "revenue" in prompt
    if generator.family.name != "paligemma":  # PaliGemma mix models take no instructions
        assert "[report.pdf p.1]" in prompt and "[slides.pdf p.3]" in prompt
        assert prompt.index("[report.pdf p.1]") < prompt.index("[slides.pdf p.3]")
    assert "mm_encoder_outputs" in inputs  # the pages, encoded once (rag.models.page_cache)


def test_max_new_tokens_bounds_the_answer(generator):
    inputs = generator.build_inputs("What?", pages()[:1])
    short = generator.answer("What?", pages()[:1], max_new_tokens=2)
    ids = generator.processor.tokenizer(short, add_special_tokens=False)["input_ids"]
    assert len(ids) <= 2 + 2  # re-tokenising decoded text may split a token or two
    assert inputs["input_ids"].shape[0] == 1


def test_no_pages_is_an_error(generator):
    with pytest.raises(ValueError, match="no pages"):
        generator.answer("What?", [])


def test_a_failing_generation_raises_in_the_stream(generator, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("device lost")

    monkeypatch.setattr(generator.model, "generate", broken)
    with pytest.raises(RuntimeError, match="device lost"):
        list(generator.stream("What?", pages()[:1]))


def test_settings_pixel_budget_reaches_qwen(tiny_models):
    settings = Settings(generator=str(tiny_models / "qwen2_vl"), answer_min_pixels=28 * 28 * 4)
    small = Answerer.load(dataclasses.replace(settings, answer_max_pixels=28 * 28 * 16))
    large = Answerer.load(dataclasses.replace(settings, answer_max_pixels=28 * 28 * 64))
    grid_small = small.build_inputs("q", pages()[:1])["image_grid_thw"]
    grid_large = large.build_inputs("q", pages()[:1])["image_grid_thw"]
    assert grid_small.prod() < grid_large.prod()


def test_closing_the_stream_early_stops_generation(generator):
    counted = []
    real_generate = generator.model.generate

    def counting_generate(**kwargs):
        output = real_generate(**kwargs)
        counted.append(output.shape[1] - kwargs["input_ids"].shape[1])
        return output

    generator.model.generate = counting_generate
    try:
        stream = generator.stream("What?", pages()[:1], max_new_tokens=400)
        next(stream, None)
        stream.close()  # the user went away after the first piece
    finally:
        del generator.model.generate
    assert counted and counted[0] < 400
    assert generator._lock.acquire(blocking=False)  # the model is free again
    generator._lock.release()


HISTORY = [Turn("What was the revenue in 2024?", "63.8 million euros [report.pdf p.1].")]


def test_earlier_turns_come_before_the_pages_and_the_stream_still_equals_the_answer(generator):
    alone = generator.build_inputs("And in 2023?", pages()[:1])
    after = generator.build_inputs("And in 2023?", pages()[:1], HISTORY)
    prompt = generator.processor.tokenizer.decode(after["input_ids"][0])
    if generator.family.name == "paligemma":  # no conversation: follow-ups come rewritten
        assert torch.equal(alone["input_ids"], after["input_ids"])
        return
    assert "revenue in 2024" in prompt and "63.8 million euros" in prompt
    assert prompt.index("63.8 million euros") < prompt.index("And in 2023?")
    whole = generator.answer("And in 2023?", pages()[:1], history=HISTORY)
    assert "".join(generator.stream("And in 2023?", pages()[:1], history=HISTORY)) == whole


def test_a_follow_up_is_rewritten_from_the_conversation(generator, monkeypatch):
    seen = []
    real = generator.family.text_inputs

    def spying(processor, prompt):
        seen.append(prompt)
        return real(processor, prompt)

    monkeypatch.setattr(generator.family, "text_inputs", spying)
    searched = generator.rewrite("And in 2023?", HISTORY)
    assert "User: What was the revenue in 2024?" in seen[0]
    assert "Assistant: 63.8 million euros" in seen[0] and "Follow-up: And in 2023?" in seen[0]
    assert searched.strip() and "\n" not in searched and len(searched) <= QUESTION_CHARS
    assert searched == generator.rewrite("And in 2023?", HISTORY)  # greedy: repeatable
    if generator.family.name == "paligemma":  # it cannot follow the instruction: as asked
        assert searched == "And in 2023?"


def test_a_pages_words_can_be_given_beside_its_image(generator):
    words = "Invoice number INV-2024-0173, total 4,812.50 EUR"
    page = PageImage("[facts.pdf p.1]", pages()[0].image, words)
    prompt = generator.processor.tokenizer.decode(
        generator.build_inputs("Total?", [page])["input_ids"][0]
    )
    if generator.family.name == "paligemma":  # a task prefix and the image only
        assert "INV-2024-0173" not in prompt
        return
    assert prompt.index("[facts.pdf p.1]") < prompt.index("INV-2024-0173")
    plain = generator.build_inputs("Total?", [PageImage(page.label, page.image)])
    assert "INV-2024-0173" not in generator.processor.tokenizer.decode(plain["input_ids"][0])


def test_smolvlm_pages_fit_the_pixel_budget_in_whole_tiles(tiny_models):
    """Idefics3 / SmolVLM: a page is sized to the longest edge of whole tiles at which it fits
    RAG_ANSWER_MAX_PIXELS, so a smaller budget gives fewer tiles (and image tokens)."""
    settings = Settings(generator=str(tiny_models / "idefics3"), answer_cache_mb=0)
    tiles = {}
    for max_pixels in (64 * 64, 128 * 91, 10**6):  # one tile; 2 a side; the processor's own 3
        generator = Answerer.load(dataclasses.replace(settings, answer_max_pixels=max_pixels))
        inputs = generator.build_inputs("q", pages()[:1])  # an A4 portrait page
        tiles[max_pixels] = inputs["pixel_values"].shape[1]
    assert list(tiles.values()) == [1, 2 * 2 + 1, 3 * 3 + 1]  # tiles, plus the global view


@pytest.mark.parametrize("name", ["idefics3", "qwen2_vl"])
def test_the_best_page_keeps_the_budget_and_the_others_get_the_rest_budget(tiny_models, name):
    """RAG_ANSWER_REST_MAX_PIXELS: the first (best) page at the answerer's budget, the others
    smaller; without it every page gets the same."""
    settings = Settings(
        generator=str(tiny_models / name),
        answer_cache_mb=0,
        answer_min_pixels=28 * 28 * 4,
        answer_max_pixels=10**6,
    )
    portrait = pages()[0]
    same = [portrait, dataclasses.replace(portrait, label="[b.pdf p.1]")]
    equal = Answerer.load(settings).build_inputs("q", same)
    rest = Answerer.load(dataclasses.replace(settings, answer_rest_max_pixels=64 * 64))
    smaller = rest.build_inputs("q", same)
    if name == "idefics3":  # tiles of both pages, the global views included
        assert equal["pixel_values"].shape[1] == 2 * (3 * 3 + 1)
        assert smaller["pixel_values"].shape[1] == (3 * 3 + 1) + 1
    else:  # 28-px cells of each page
        first, second = smaller["image_grid_thw"].prod(dim=-1).tolist()
        assert equal["image_grid_thw"].prod(dim=-1).tolist() == [first, first]
        assert second < first / 4  # 64 x 64 pixels against a million


def test_the_rest_budget_never_exceeds_the_best_pages(tiny_models):
    settings = Settings(
        generator=str(tiny_models / "idefics3"),
        answer_cache_mb=0,
        answer_max_pixels=64 * 64,
        answer_rest_max_pixels=10**6,  # e.g. a profile's, under a smaller RAG_ANSWER_MAX_PIXELS
    )
    inputs = Answerer.load(settings).build_inputs("q", pages())
    assert inputs["pixel_values"].shape[1] == 2  # one tile each
