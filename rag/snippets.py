"""Which of a page's words a question matched, for people: a snippet of the page's text with
those words marked, and their boxes (to draw over the page).

A page word matches when one of its pieces (``INV-2024-0173`` is ``INV``, ``2024``, ``0173``)
equals a word of the question, compared without case or accents. Short function words of
English (``the``, ``of``, ``what``...) are not marked: they match everywhere and say nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.index.lexical import STOPWORDS, fold_term, spaced
from rag.text import Box, PageText

WINDOW = 24  # words in a snippet
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Snippet:
    """A stretch of a page's text: ``(word, matched)`` pairs, and whether text was cut before
    and after it."""

    words: tuple[tuple[str, bool], ...]
    cut_before: bool = False
    cut_after: bool = False


def fold(text: str) -> str:
    """Lower case without accents: how words are compared (``Résumé`` -> ``resume``)."""
    return fold_term(text)


def question_terms(question: str) -> set[str]:
    """The question's words worth marking, folded.

    >>> sorted(question_terms("What is the total of invoice INV-2024-0173?"))
    ['0173', '2024', 'inv', 'invoice', 'total']
    """
    terms = {fold(t) for t in _WORD.findall(spaced(question))}
    return {t for t in terms if t not in STOPWORDS}


def matched(word: str, terms: set[str]) -> bool:
    return any(fold(piece) in terms for piece in _WORD.findall(spaced(word)))


def matched_boxes(page: PageText, question: str) -> list[Box]:
    """The boxes of the page's words the question matched."""
    terms = question_terms(question)
    return [word.box for word in page.words if matched(word.text, terms)] if terms else []


def snippet(page: PageText, question: str, window: int = WINDOW) -> Snippet | None:
    """The ``window`` words of the page holding the most matched words (the earliest such
    stretch), or None if the question matches none of its words."""
    terms = question_terms(question)
    hits = [matched(word.text, terms) for word in page.words] if terms else []
    if not any(hits):
        return None
    best, start = -1, 0
    for first in range(max(1, len(hits) - window + 1)):
        count = sum(hits[first : first + window])
        if count > best:
            best, start = count, first
    stop = min(len(hits), start + window)
    words = tuple((page.words[i].text, hits[i]) for i in range(start, stop))
    return Snippet(words, start > 0, stop < len(hits))
