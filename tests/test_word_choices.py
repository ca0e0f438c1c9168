"""The words a person picks for a heatmap: Chinese, Japanese and Korean questions split into
words on the tiny models' real tokenizers (byte-level BPE and SentencePiece with byte
fallback, each character several tokens), and a page's choices (content words only, most
matched first, a few shown) on hand-built maps."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from rag.asking import Answer
from rag.index import Hit
from rag.terms import STOPWORDS
from rag.view.choices import CJK_STOPWORDS, choose_words, content_words
from rag.view.heatmaps import (
    PageMaps,
    QueryToken,
    QueryWord,
    TokenMap,
    meaningful_tokens,
    word_grid,
    words_of,
)
from rag.view.overlay import render_overlay

# colqwen2: Qwen2's byte-level BPE; colpali: Gemma's SentencePiece with byte fallback.
TOKENIZERS = ["colqwen2", "colpali"]


@pytest.fixture(scope="module", params=TOKENIZERS)
def tokenizer(request, tiny_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_models / request.param)


def question_words(tokenizer, question: str) -> tuple[list[int], list]:
    """The query's ids as a processor lays them out (a prefix before the question), and the
    question's words."""
    ids = tokenizer("Query: " + question)["input_ids"]
    return ids, words_of(meaningful_tokens(tokenizer, ids, question), question)


def spelled(tokenizer, ids: list[int], word) -> str:
    """What a word's tokens decode to, together."""
    return tokenizer.decode([ids[i] for i in word.indices]).strip()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("2024年的销售额是多少？", ["2024", "年", "的", "销", "售", "额", "是", "多", "少"]),
        ("东京，上海、北京。", ["东", "京", "上", "海", "北", "京"]),
        ("東京の売上は、どうでしたか。", ["東", "京", "の", "売", "上", "は", "どうでしたか"]),
        ("データの件数「2024」", ["データ", "の", "件", "数", "2024"]),
        ("2024年の売上", ["2024", "年", "の", "売", "上"]),
        ("iPhoneケースの売上（Q3）", ["iPhone", "ケース", "の", "売", "上", "Q3"]),
        ("2024년 매출은 얼마입니까?", ["2024년", "매출은", "얼마입니까"]),
    ],
    ids=["chinese", "full-width-punctuation", "japanese", "katakana", "mixed", "latin", "korean"],
)
def test_cjk_questions_split_into_words_that_own_whole_tokens(tokenizer, question, expected):
    ids, words = question_words(tokenizer, question)
    assert [w.text for w in words] == expected
    for word in words:  # every token of each character is the word's, and only those
        assert spelled(tokenizer, ids, word) == word.text
    owned = [i for w in words for i in w.indices]
    assert len(owned) == len(set(owned))  # no token in two words


def test_a_character_split_over_byte_tokens_is_one_word_with_all_of_them(tokenizer):
    _, words = question_words(tokenizer, "売上")
    assert [w.text for w in words] == ["売", "上"]
    assert [len(w.indices) for w in words] == [3, 3]  # UTF-8: three bytes, three tokens each


def test_an_english_question_still_reads_as_its_words(tokenizer):
    ids, words = question_words(tokenizer, "What was the revenue in 2024?")
    assert [w.text for w in words] == ["What", "was", "the", "revenue", "in", "2024"]
    assert spelled(tokenizer, ids, words[-1]) == "2024"


def test_content_words_leave_out_stop_words_punctuation_and_repeats():
    words = [
        *(QueryWord(text, (i,)) for i, text in enumerate(["What", "is", "the", "Revenue"])),
        QueryWord("revenue", (4,)),
        QueryWord("…", (5,)),
        QueryWord("の", (6,)),
        QueryWord("売", (7, 8, 9)),
        QueryWord("売", (10, 11, 12)),
        QueryWord("ど", (13,)),  # not と: kana keep their voicing marks
    ]
    chosen = content_words(words)
    assert [(w.text, w.indices) for w in chosen] == [
        ("Revenue", (3, 4)),
        ("売", (7, 8, 9, 10, 11, 12)),
        ("ど", (13,)),
    ]
    assert "と" in CJK_STOPWORDS


def maps_of(grids: dict[int, torch.Tensor]) -> PageMaps:
    """Hand-built maps: query token ``index``'s (n_y, n_x) similarities are ``grids[index]``."""
    tokens = [TokenMap(QueryToken(index, f"t{index}"), grid) for index, grid in grids.items()]
    return PageMaps(query=torch.zeros_like(next(iter(grids.values()))), tokens=tokens)


def peak_at(cell: int, value: float) -> torch.Tensor:
    """A 2 x 3 map that is ``value`` at ``cell`` (row-major) and 0 elsewhere."""
    grid = torch.zeros(6)
    grid[cell] = value
    return grid.reshape(2, 3)


def test_choices_come_most_matched_first_by_the_peak_of_each_words_map():
    words = [QueryWord("alpha", (0,)), QueryWord("beta", (1, 2)), QueryWord("gamma", (3,))]
    # beta's tokens peak in different cells: its map, their mean, peaks at 0.9 / 2 = 0.45
    maps = maps_of({0: peak_at(0, 0.4), 1: peak_at(1, 0.9), 2: peak_at(2, 0.0), 3: peak_at(5, 0.7)})
    choices = choose_words(words, maps, limit=2)
    assert [w.text for w in choices.shown] == ["gamma", "beta"]
    assert [w.text for w in choices.rest] == ["alpha"]
    assert choices.named("alpha") is choices.rest[0]
    assert choices.named("delta") is None


def test_equal_matches_keep_question_order():
    words = [QueryWord(text, (i,)) for i, text in enumerate(["z", "x", "y"])]
    choices = choose_words(words, maps_of({i: peak_at(i, 0.5) for i in range(3)}))
    assert [w.text for w in choices.shown] == ["z", "x", "y"]


def long_question() -> tuple[str, list[QueryToken]]:
    """A 5,000-character question of repeated and stop words, one token per word."""
    vocabulary = [f"term{n}" for n in range(40)] + sorted(STOPWORDS)
    text, tokens, index = "", [], 0
    while len(text) < 5000:
        word = vocabulary[index % len(vocabulary)]
        tokens.append(QueryToken(index, word, len(text), len(text) + len(word)))
        text += word + " "
        index += 1
    return text, tokens


def test_a_5000_character_question_offers_at_most_the_limit_and_the_rest_on_demand():
    question, tokens = long_question()
    assert len(question) >= 5000
    hit = Hit("a1", "report.pdf", 1, 1.0, None)
    # term<n> matches the page as much as n says, a stop word 0
    value = {t.index: float(t.text[4:]) if t.text.startswith("term") else 0.0 for t in tokens}
    maps = maps_of({i: torch.full((2, 3), v) for i, v in value.items()})
    answer = Answer(question, [hit], torch.zeros(len(tokens), 4), tokens, OnePage(), None)
    answer._maps[(hit.doc_id, hit.page_number)] = maps  # the page's maps, as computed once

    choices = answer.word_choices(hit, limit=12)
    assert len(choices.shown) == 12
    texts = [w.text for w in choices.all]
    assert sorted(texts) == sorted(f"term{n}" for n in range(40))  # each once, no stop word
    assert texts[:3] == ["term39", "term38", "term37"]  # the most matched first
    assert len(choices.all[0].indices) == len([t for t in tokens if t.text == "term39"])
    assert len(answer.word_choices(hit, limit=50).shown) == 40


class OnePage:
    """A page reader for an answer whose maps are already computed: the page image only,
    always readable."""

    def check(self, hit: Hit) -> None:
        return None

    def image(self, hit: Hit) -> Image.Image:
        return Image.new("RGB", (300, 200), "white")


def test_a_chosen_word_draws_the_map_of_all_its_occurrences():
    tokens = [
        QueryToken(0, "total", 0, 5),
        QueryToken(1, "and", 6, 9),
        QueryToken(2, "Total", 10, 15),
    ]
    hit = Hit("a1", "report.pdf", 1, 1.0, None)
    answer = Answer("total and Total", [hit], torch.zeros(3, 4), tokens, OnePage(), None)
    maps = maps_of({0: peak_at(0, 1.0), 1: peak_at(1, 1.0), 2: peak_at(5, 1.0)})
    answer._maps[(hit.doc_id, hit.page_number)] = maps

    (total,) = answer.word_choices(hit).shown  # "and" is a stop word, "Total" a repeat
    assert total.indices == (0, 2)
    drawn = answer.heatmap_image(hit, total)
    expected = render_overlay(OnePage().image(hit), word_grid(maps, total))
    assert drawn.tobytes() == expected.tobytes()  # both cells of "total", not "and"'s
    assert answer.heatmap_image(hit, 0).tobytes() != drawn.tobytes()  # words[0]: the first only


def test_characters_sharing_a_token_are_one_word():
    # as a full-size vocabulary reads 売上 (one token) and 、ど (a mark and a kana in one)
    tokens = [
        QueryToken(0, "東", 0, 1),
        QueryToken(1, "売上", 1, 3),
        QueryToken(2, "、ど", 3, 5),
        QueryToken(3, "う", 5, 6),
    ]
    words = words_of(tokens, "東売上、どう")
    assert [(w.text, w.indices) for w in words] == [
        ("東", (0,)),
        ("売上", (1,)),
        ("どう", (2, 3)),
    ]
