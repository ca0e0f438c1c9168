"""What a search term is, in one place: the full-text index (rag.index.lexical), Qdrant's sparse
vectors (rag.index.sparse) and the snippets people see (rag.view.snippets) all split and fold words
this way, so what is found is what is marked.

- Words are runs of letters and digits of any script (``\\w+``): Greek, Cyrillic, Arabic and
  Hebrew words are terms like any other; a code splits at its punctuation (``INV-2024-0173`` is
  ``inv``, ``2024``, ``0173``).
- Chinese, Japanese and Korean are written without spaces, so each of their characters is a
  term: a question in them finds the pages holding its characters, ranked by how many and how
  rare.
- Terms are folded: case (``casefold``) and accents (``résumé`` is ``resume``).
- A question's English function words (``the``, ``of``, ``what``...) are left out: they are on
  nearly every page and tell a search nothing.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_QUESTION_TERMS = 64  # more is not a question
MAX_TERM_CHARS = 64  # a longer "word" is an unbroken run of garbage, not something asked for
# fmt: off
STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how",
    "in", "is", "it", "its", "of", "on", "or", "the", "this", "that", "to", "was", "were",
    "what", "when", "where", "which", "who", "whom", "why", "will", "with",
))
# fmt: on
_CJK = re.compile(
    "([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002fa1f])"
)
_WORD = re.compile(r"\w+", re.UNICODE)


def spaced(text: str) -> str:
    """``text`` with each CJK character set apart, so that each is a word.

    >>> spaced("東京の売上 2024")
    ' 東  京  の  売  上  2024'
    """
    return _CJK.sub(r" \1 ", text)


def pieces(text: str) -> list[str]:
    """The words of ``text``, unfolded, in order (each CJK character one).

    >>> pieces("Who approved INV-2024-0173?")
    ['Who', 'approved', 'INV', '2024', '0173']
    """
    return _WORD.findall(spaced(text))


@lru_cache(maxsize=65536)  # pages repeat their words: each is folded once
def fold(word: str) -> str:
    """A word as it is searched: case-folded, accents removed.

    >>> fold("Résumé")
    'resume'
    """
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def page_terms(text: str) -> list[str]:
    """Every folded term of a page's text, repeats kept (their counts are BM25's term
    frequencies).

    >>> page_terms("Invoice INV-1, invoice")
    ['invoice', 'inv', '1', 'invoice']
    """
    return [fold(word) for word in pieces(text) if len(word) <= MAX_TERM_CHARS]


def question_terms(question: str, limit: int | None = MAX_QUESTION_TERMS) -> list[str]:
    """A question's folded terms worth searching for, each once, in order, at most ``limit``.

    >>> question_terms("What is the total of invoice INV-2024-0173? Invoice!")
    ['total', 'invoice', 'inv', '2024', '0173']
    """
    terms = [t for t in dict.fromkeys(page_terms(question)) if t not in STOPWORDS]
    return terms if limit is None else terms[:limit]
