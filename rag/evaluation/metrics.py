"""The evaluation's arithmetic, pure: ranking metrics over a ranked list of units (pages or
documents) against a key of graded relevant units, answer agreement after SQuAD-style
normalisation, and the summary of a stage's times.

A ranking is what the search returned, best first; a unit found twice (the pages of one
document, when documents are scored) counts at its first place only. ``key`` maps each
relevant unit to its grade (1 or more; binary relevance is every grade 1). A question with no
relevant unit has no retrieval score (None): it is left out of the averages, as trec_eval
leaves out queries without qrels.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence

Key = Mapping[Hashable, float]


def distinct(ranking: Iterable[Hashable]) -> list[Hashable]:
    """``ranking`` with each unit at its first place only.

    >>> distinct(["a", "b", "a", "c"])
    ['a', 'b', 'c']
    """
    return list(dict.fromkeys(ranking))


def relevant(key: Key) -> set[Hashable]:
    """The units of ``key`` with a grade above 0."""
    return {unit for unit, grade in key.items() if grade > 0}


def recall_at(ranking: Sequence[Hashable], key: Key, k: int) -> float | None:
    """The share of the relevant units found in the first ``k`` places.

    >>> recall_at(["x", "a", "y", "b"], {"a": 1, "b": 2}, 1), recall_at(["x", "a"], {"a": 1}, 2)
    (0.0, 1.0)
    >>> recall_at(["a", "a", "x"], {"a": 1, "b": 1}, 3)  # a repeat counts once
    0.5
    >>> recall_at(["a"], {}, 5) is None  # nothing relevant: not scored
    True
    """
    wanted = relevant(key)
    if not wanted:
        return None
    return len(wanted & set(distinct(ranking)[:k])) / len(wanted)


def reciprocal_rank(ranking: Sequence[Hashable], key: Key) -> float | None:
    """1 / the place of the first relevant unit (0 when none was found).

    >>> reciprocal_rank(["x", "y", "a"], {"a": 1}), reciprocal_rank(["x"], {"a": 1})
    (0.3333333333333333, 0.0)
    """
    wanted = relevant(key)
    if not wanted:
        return None
    for place, unit in enumerate(distinct(ranking), start=1):
        if unit in wanted:
            return 1 / place
    return 0.0


def dcg(gains: Iterable[float]) -> float:
    """Discounted cumulative gain: the gain at place i (1-based) divided by log2(i + 1).

    >>> dcg([3, 2, 0])  # 3/1 + 2/log2(3)
    4.2618595071429155
    """
    return sum(gain / math.log2(place + 1) for place, gain in enumerate(gains, start=1))


def ndcg_at(ranking: Sequence[Hashable], key: Key, k: int) -> float | None:
    """nDCG@k with the grades as linear gains (trec_eval's ``ndcg_cut``): the DCG of the
    first ``k`` places over the DCG of the best possible first ``k`` (the key's grades,
    highest first).

    >>> ndcg_at(["a", "b"], {"a": 1, "b": 1}, 5)  # binary: both found, best order
    1.0
    >>> round(ndcg_at(["x", "a"], {"a": 1}, 5), 4)  # found second: 1/log2(3)
    0.6309
    >>> round(ndcg_at(["b", "a"], {"a": 2, "b": 1}, 2), 4)  # graded: the order matters
    0.8597
    >>> ndcg_at(["x", "y", "a"], {"a": 2}, 2), ndcg_at([], {"a": 1}, 10)
    (0.0, 0.0)
    """
    wanted = relevant(key)
    if not wanted:
        return None
    found = [key.get(unit, 0) if unit in wanted else 0 for unit in distinct(ranking)[:k]]
    ideal = sorted((key[unit] for unit in wanted), reverse=True)[:k]
    return dcg(found) / dcg(ideal)


def first_relevant(ranking: Sequence[Hashable], key: Key) -> int | None:
    """The 1-based place of the first relevant unit (None: none was found).

    >>> first_relevant(["x", "a"], {"a": 1}), first_relevant(["x"], {"a": 1})
    (2, None)
    """
    wanted = relevant(key)
    places = (p for p, unit in enumerate(distinct(ranking), start=1) if unit in wanted)
    return next(places, None)


CUTS = (1, 5, 10)  # recall@k reported
NDCG_CUTS = (5, 10)


def retrieval_scores(ranking: Sequence[Hashable], key: Key) -> dict[str, float | None]:
    """Every retrieval metric of one question, by its name in reports.

    >>> retrieval_scores(["x", "a"], {"a": 1})["mrr"]
    0.5
    """
    scores: dict[str, float | None] = {f"recall@{k}": recall_at(ranking, key, k) for k in CUTS}
    scores["mrr"] = reciprocal_rank(ranking, key)
    scores |= {f"ndcg@{k}": ndcg_at(ranking, key, k) for k in NDCG_CUTS}
    return scores


# -- answers ---------------------------------------------------------------------------------

ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, punctuation removed, the articles a/an/the
    removed, whitespace collapsed.

    >>> normalize_answer("The  Total is 4,812.50 EUR!")
    'total is 481250 eur'
    """
    text = text.lower()
    text = "".join(c for c in text if c not in string.punctuation)
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference, else 0.0.

    >>> exact_match("Oduya Logistics.", ["oduya logistics"]), exact_match("Oduya", ["x", "y"])
    (1.0, 0.0)
    """
    said = normalize_answer(prediction)
    return float(any(said == normalize_answer(ref) for ref in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD's token F1 of the normalised prediction against the best reference: the harmonic
    mean of the shared tokens' precision and recall (tokens counted with repeats).

    >>> token_f1("paid by Oduya", ["Oduya Logistics"])  # 1 shared: p 1/3, r 1/2
    0.4
    >>> token_f1("", ["x"]), token_f1("", [""])
    (0.0, 1.0)
    """
    return max((_f1(prediction, ref) for ref in references), default=0.0)


def _f1(prediction: str, reference: str) -> float:
    said, wanted = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not said or not wanted:
        return float(said == wanted)
    shared = sum((Counter(said) & Counter(wanted)).values())
    if not shared:
        return 0.0
    precision, recall = shared / len(said), shared / len(wanted)
    return 2 * precision * recall / (precision + recall)


# -- summaries -------------------------------------------------------------------------------


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None (None when there are none).

    >>> mean([1.0, None, 0.0]), mean([None])
    (0.5, None)
    """
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0-1) percentile, linearly interpolated between the nearest ranks (as
    numpy's default).

    >>> percentile([1, 2, 3, 4], 0.5), round(percentile([1, 2, 3, 4], 0.95), 6), percentile([7], 1)
    (2.5, 3.85, 7.0)
    """
    ordered = sorted(values)
    at = (len(ordered) - 1) * share
    low, high = math.floor(at), math.ceil(at)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (at - low))


def timing_summary(seconds: Sequence[float]) -> dict[str, float] | None:
    """Mean, median and 95th percentile of a stage's times (None: the stage never ran).

    >>> {stage: round(s, 6) for stage, s in timing_summary([1.0, 2.0, 3.0, 10.0]).items()}
    {'mean': 4.0, 'p50': 2.5, 'p95': 8.95}
    """
    if not seconds:
        return None
    return {
        "mean": sum(seconds) / len(seconds),
        "p50": percentile(seconds, 0.5),
        "p95": percentile(seconds, 0.95),
    }
