"""Which of a page's words a question matched, for people: a snippet of the page's text with
those words marked, and their boxes (to draw over the page).

A page word matches when one of its terms (``INV-2024-0173`` is ``inv``, ``2024``, ``0173``)
is a term of the question, as the search compares them (``rag.terms``: without case or
accents; English function words such as ``the``, ``of``, ``what`` are not searched for, so
they are not marked).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.terms import page_terms, question_terms
from rag.words import Box, PageText

WINDOW = 24  # words in a snippet


@dataclass(frozen=True)
class Snippet:
    """A stretch of a page's text: ``(word, matched)`` pairs, and whether text was cut before
    and after it."""

    words: tuple[tuple[str, bool], ...]
    cut_before: bool = False
    cut_after: bool = False


def matched(word: str, terms: set[str]) -> bool:
    return any(term in terms for term in page_terms(word))


def matched_boxes(page: PageText, question: str) -> list[Box]:
    """The boxes of the page's words the question matched."""
    terms = set(question_terms(question, limit=None))
    return [word.box for word in page.words if matched(word.text, terms)] if terms else []


def snippet(page: PageText, question: str, window: int = WINDOW) -> Snippet | None:
    """The ``window`` words of the page holding the most matched words (the earliest such
    stretch), or None if the question matches none of its words."""
    terms = set(question_terms(question, limit=None))
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
