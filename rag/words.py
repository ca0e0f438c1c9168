"""A page's words and where they sit: the vocabulary that ingestion (text layer, OCR), the index
(the words' search) and the page view (snippets, framed words) share.

Boxes are fractions of the page (0 to 1, from the top-left corner), so they fit any rendering
of it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

MAX_WORDS = 20_000  # per page: more is not a page of text but a hostile file
MAX_WORD_CHARS = 64
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the page


@dataclass(frozen=True)
class Word:
    text: str
    box: Box


@dataclass(frozen=True)
class PageText:
    page_number: int  # 1-based
    words: tuple[Word, ...] = ()
    source: str = "none"  # "layer" (the PDF's text), "ocr", or "none"

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)


def clean_word(text: str) -> str:
    """A word as stored: NFC, no control characters, at most ``MAX_WORD_CHARS`` long."""
    text = unicodedata.normalize("NFC", text.strip())
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    return text[:MAX_WORD_CHARS]
