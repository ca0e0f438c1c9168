"""Pages' words as sparse BM25 vectors, for Qdrant: one dimension per term (a 32-bit hash of
it), valued by BM25's term-frequency part; Qdrant's IDF modifier supplies the rest from the
collection's own statistics, so a query is its terms at weight 1.

Terms are ``rag.terms``'s, as in the local full-text index (``rag.index.lexical``): words of
every script, each CJK character one, case and accents folded, so both backends search the same
terms.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from rag.terms import page_terms, question_terms

K1, B = 1.2, 0.75  # BM25's usual constants
# BM25 normalises a page's length by the collection's mean; a page's vector is written once, so
# a typical page's word count stands in for it (as fastembed's Bm25 does).
AVERAGE_WORDS = 256


def term_id(term: str) -> int:
    """A folded term's dimension: the first 4 bytes of its BLAKE2b hash."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def page_vector(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a page's words: BM25's saturated, length-normalised frequency.

    >>> indices, values = page_vector("Invoice INV-1 invoice")
    >>> len(indices), round(max(values), 3), round(min(values), 3)
    (3, 1.901, 1.674)
    """
    words = page_terms(text)
    counts = Counter(words)
    norm = K1 * (1 - B + B * len(words) / AVERAGE_WORDS)
    pairs = sorted((term_id(t), tf * (K1 + 1) / (tf + norm)) for t, tf in counts.items())
    return [i for i, _ in pairs], [v for _, v in pairs]


def query_vector(question: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a question's terms, each at weight 1."""
    ids = sorted({term_id(t) for t in question_terms(question)})
    return ids, [1.0] * len(ids)
