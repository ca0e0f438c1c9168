"""The question's words a person picks from for a page's heatmap: its content words (no stop
word, no repeat), the ones that match the page most first, a few shown and the rest on demand.

A 5,000-character question has hundreds of words; a picker offering them all is a wall. The
words come from ``rag.view.heatmaps.words_of``, their matches from the page's maps.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import torch

from rag.terms import STOPWORDS
from rag.view.heatmaps import PageMaps, QueryWord, is_noise

SHOWN = 12  # chips that fit above the page on a desktop screen without scrolling
# Chinese and Japanese words that do for a question what English stop words do: particles and
# the copula. rag.terms.STOPWORDS is English; search needs no such list (each character is a
# term there, weighed by BM25), but a picker offering "の" or "的" offers nothing.
# fmt: off
CJK_STOPWORDS = frozenset((
    "的", "了", "是", "吗", "呢", "吧", "和", "与", "或", "在", "也", "之",
    "の", "は", "が", "を", "に", "で", "と", "も", "へ", "や", "か", "ね", "よ",
    "から", "まで", "より", "です", "ですか", "ます", "でした", "でしたか",
))
# fmt: on


@dataclass(frozen=True)
class WordChoices:
    """A page's word choices, most matched first: ``shown`` (at most the limit asked for),
    then ``rest`` (for a "more" control)."""

    shown: tuple[QueryWord, ...]
    rest: tuple[QueryWord, ...]

    @property
    def all(self) -> tuple[QueryWord, ...]:
        return self.shown + self.rest

    def named(self, text: str) -> QueryWord | None:
        """The choice that reads ``text`` (None if none does: a word of another question)."""
        return next((word for word in self.all if word.text == text), None)


def content_words(words: list[QueryWord]) -> list[QueryWord]:
    """``words`` without stop words and punctuation, each once, in question order: a word
    repeated (in any case) is one word whose indices are all of its occurrences'.

    >>> words = [QueryWord("What", (1,)), QueryWord("revenue", (2,)), QueryWord("?", (3,)),
    ...          QueryWord("Revenue", (4, 5))]
    >>> [(w.text, w.indices) for w in content_words(words)]
    [('revenue', (2, 4, 5))]
    """
    merged: dict[str, QueryWord] = {}
    for word in words:
        key = same_word(word.text)
        if not key or is_noise(key) or key in STOPWORDS or key in CJK_STOPWORDS:
            continue
        first = merged.get(key)
        merged[key] = QueryWord(first.text, first.indices + word.indices) if first else word
    return list(merged.values())


def same_word(text: str) -> str:
    """What two occurrences of one word share: its case-folded NFKC form (full-width Latin
    is Latin; kana keep their voicing marks, so ど is not と)."""
    return unicodedata.normalize("NFKC", text).casefold()


def choose_words(words: list[QueryWord], maps: PageMaps, limit: int = SHOWN) -> WordChoices:
    """The content words of ``words`` (``content_words``), ordered by how strongly each
    matches the page of ``maps`` (the peak of its map; ties keep question order), the first
    ``limit`` shown."""
    ranked = sorted(content_words(words), key=peaks(maps), reverse=True)
    return WordChoices(tuple(ranked[:limit]), tuple(ranked[limit:]))


def peaks(maps: PageMaps):
    """word -> the highest similarity of its map (the mean of its tokens' maps) on the page."""
    grids = {item.token.index: item.grid for item in maps.tokens}

    def peak(word: QueryWord) -> float:
        found = [grids[index] for index in word.indices if index in grids]
        return float(torch.stack(found).mean(dim=0).max()) if found else float("-inf")

    return peak
