"""One ranking from two: the pages' pictures (MaxSim) and their words (BM25).

``rrf``: reciprocal rank fusion, ``sum 1 / (RRF_K + rank)`` over the rankings a page is in
(Cormack et al., 2009), ranks counted from 0 as Qdrant counts them, so that both backends fuse
alike: only ranks count, so the two scores' scales never need to agree.
``weighted``: each ranking's scores scaled to [0, 1] between its worst and its best (a page it
lacks counts 0),
then ``weight x words + (1 - weight) x picture``. Both keep each side's own score on the hit.
"""

from __future__ import annotations

from collections.abc import Callable

from rag.index.lexical import TextHit
from rag.index.records import Hit

RRF_K = 60  # the constant of Cormack et al., also Qdrant's and Vespa's default

Key = tuple[str, int]  # (doc_id, page_number)


def fuse(
    visual: list[Hit],
    text: list[TextHit],
    k: int,
    hit_for: Callable[[TextHit], Hit],
    *,
    mode: str = "rrf",
    weight: float = 0.3,
) -> list[Hit]:
    """The ``k`` best pages of both rankings, best first. ``hit_for`` makes the Hit of a page
    only the words found. Each hit carries ``visual_score`` and ``text_score`` (None: not in
    that ranking) and its fused ``score``.

    >>> from pathlib import Path
    >>> seen = [Hit("a", "a.pdf", 1, 9.0, Path("a1")), Hit("b", "b.pdf", 2, 8.0, Path("b2"))]
    >>> read = [TextHit("b", 2, 3.5), TextHit("c", 1, 2.0)]
    >>> make = lambda t: Hit(t.doc_id, t.doc_id + ".pdf", t.page_number, 0.0, Path("x"))
    >>> [(h.doc_id, round(h.score, 4)) for h in fuse(seen, read, 3, make)]
    [('b', 0.0331), ('a', 0.0167), ('c', 0.0164)]
    """
    pictures = {(hit.doc_id, hit.page_number): hit for hit in visual}
    words = {(found.doc_id, found.page_number): found for found in text}
    scores = _rrf(visual, text) if mode == "rrf" else _weighted(visual, text, weight)
    ranked = sorted(scores, key=lambda key: (-scores[key], key))[:k]
    hits = []
    for key in ranked:  # Hits made for the k kept only
        seen, read = pictures.get(key), words.get(key)
        base = seen or hit_for(read)
        hits.append(  # made directly: dataclasses.replace costs as much as the rest
            Hit(
                base.doc_id,
                base.name,
                base.page_number,
                scores[key],
                base.image_path,
                visual_score=seen.score if seen else None,
                text_score=read.score if read else None,
                unit=base.unit,
            )
        )
    return hits


def _rrf(visual: list[Hit], text: list[TextHit]) -> dict[Key, float]:
    scores: dict[Key, float] = {}
    for ranking in (visual, text):
        for rank, item in enumerate(ranking):
            key = (item.doc_id, item.page_number)
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return scores


def _weighted(visual: list[Hit], text: list[TextHit], weight: float) -> dict[Key, float]:
    scores: dict[Key, float] = {}
    for ranking, share in ((visual, 1.0 - weight), (text, weight)):
        best = max((item.score for item in ranking), default=0.0)
        low = min((item.score for item in ranking), default=0.0)
        span = best - low
        for item in ranking:
            key = (item.doc_id, item.page_number)
            scaled = (item.score - low) / span if span > 0 else 1.0
            scores[key] = scores.get(key, 0.0) + share * scaled
    return scores
