"""An evaluation run: every question asked through the app's own search path in each
configuration (a fusion mode, with or without the reranker), its ranking scored against its
key, and, if asked for, its answer written and scored against the reference.

The search is ``Asking.ask`` itself, as the CLI and the web app call it, so what is measured is
what users get; each stage (search, answer, judge) is timed per question.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from rag.citations import PATTERN
from rag.config import HYBRID_MODES
from rag.errors import RagError
from rag.evaluation.judge import judge
from rag.evaluation.metrics import (
    exact_match,
    first_relevant,
    mean,
    retrieval_scores,
    timing_summary,
    token_f1,
)
from rag.evaluation.questions import Keyed

logger = logging.getLogger(__name__)

STAGES = ("search", "answer", "judge")
RETRIEVAL = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@5", "ndcg@10")
ANSWERING = ("exact_match", "f1", "judge", "box_overlap")


@dataclass(frozen=True)
class Configuration:
    """How the questions are searched: a fusion ``mode`` (rag.config.HYBRID_MODES) and
    whether the reranker reorders the fused pages."""

    mode: str
    rerank: bool = False

    @property
    def name(self) -> str:
        return f"{self.mode}+rerank" if self.rerank else self.mode


def configurations(settings, modes: Sequence[str]) -> list[Configuration]:
    """Each mode without the reranker, and with it too when one is configured
    (``settings.reranker``, RAG_RERANKER, other than off)."""
    unknown = [mode for mode in modes if mode not in HYBRID_MODES]
    if unknown or not modes:
        raise RagError(f"modes: {', '.join(unknown) or 'none'}: use {', '.join(HYBRID_MODES)}")
    chosen = [Configuration(mode) for mode in dict.fromkeys(modes)]
    if reranker_set(settings):
        chosen += [Configuration(c.mode, rerank=True) for c in chosen]
    return chosen


def reranker_set(settings) -> bool:
    """Whether a reranker is configured (RAG_RERANKER); then each configuration says whether
    it reranks, since the app's default is to rerank whenever one is set."""
    return getattr(settings, "reranker", "off") not in ("off", "", None)


@dataclass(frozen=True)
class Options:
    """``top_k``: pages retrieved (the metrics' largest cut-off uses what is there);
    ``answers``: write and score answers; ``judge``: ask the judge too; ``scope``: the
    documents searched (ids; empty: all the caller may read)."""

    top_k: int = 10
    answers: bool = False
    judge: bool = False
    scope: tuple[str, ...] = ()


@dataclass
class Outcome:
    """One question in one configuration."""

    ranking: list[dict] = field(default_factory=list)  # {doc_id, name, page}, best first
    scores: dict[str, float | None] = field(default_factory=dict)
    first_relevant: int | None = None
    answer: str | None = None
    judge_reply: str | None = None
    times: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Run:
    """What the evaluation found: per configuration, an Outcome per question."""

    configurations: list[Configuration]
    questions: list[Keyed]
    options: Options
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def metrics(self, configuration: Configuration) -> dict[str, float | None]:
        """Each metric's mean over the questions it applies to (None: none did)."""
        outcomes = self.outcomes[configuration.name]
        return {name: mean(o.scores.get(name) for o in outcomes) for name in self.metric_names}

    @property
    def metric_names(self) -> list[str]:
        """The metrics this run measured: retrieval always, the answers' when any was scored."""
        seen = {name for runs in self.outcomes.values() for o in runs for name in o.scores}
        return [*RETRIEVAL, *(name for name in ANSWERING if name in seen)]

    def timings(self, configuration: Configuration) -> dict[str, dict[str, float]]:
        """Each stage's mean, p50 and p95 in seconds, over the questions it ran for."""
        outcomes = self.outcomes[configuration.name]
        summaries = {
            s: timing_summary([o.times[s] for o in outcomes if s in o.times]) for s in STAGES
        }
        return {stage: summary for stage, summary in summaries.items() if summary}

    def scored(self, configuration: Configuration) -> int:
        """How many questions have a retrieval score."""
        return sum(o.scores.get("mrr") is not None for o in self.outcomes[configuration.name])


Progress = Callable[[Configuration, int, int], None]


def evaluate(
    pipeline,
    questions: list[Keyed],
    chosen: list[Configuration],
    options: Options,
    progress: Progress | None = None,
) -> Run:
    """Ask every question in every configuration; ``progress(configuration, done, total)``."""
    run = Run(chosen, questions, options)
    warm(pipeline, options)
    for configuration in chosen:
        outcomes = run.outcomes.setdefault(configuration.name, [])
        for done, keyed in enumerate(questions, start=1):
            outcomes.append(evaluate_one(pipeline, keyed, configuration, options))
            if progress:
                progress(configuration, done, len(questions))
    return run


def warm(pipeline, options: Options) -> None:
    """Load the models and lay out the index before the clock starts, so that the first
    question's times are a question's, not the loading's."""
    pipeline.warm()
    _ = pipeline.models.retriever
    if options.answers:
        _ = pipeline.models.answerer


def evaluate_one(pipeline, keyed: Keyed, configuration: Configuration, options: Options) -> Outcome:
    """One question searched (and answered) in one configuration; a RagError (a document
    deleted meanwhile, a model server down) is the outcome's ``error``, not the run's end."""
    outcome = Outcome()
    try:
        answer = search(pipeline, keyed, configuration, options, outcome)
        if keyed.question.answers and options.answers:
            write_answer(pipeline, keyed, answer, options, outcome)
        if keyed.boxes:
            overlap = box_overlap_of(answer, keyed, pipeline.settings.top_k)
            if overlap is not None:
                outcome.scores["box_overlap"] = overlap
    except RagError as error:
        outcome.error = str(error)
        logger.warning("%s (%s): %s", keyed.question.where, configuration.name, error)
    return outcome


def search(pipeline, keyed: Keyed, configuration: Configuration, options: Options, outcome):
    """The app's own search path, timed; the ranking scored against the key."""
    extra = {"rerank": configuration.rerank} if reranker_set(pipeline.settings) else {}
    started = time.perf_counter()
    answer = pipeline.asking.ask(
        keyed.question.text,
        options.top_k,
        list(options.scope),
        hybrid=configuration.mode,
        caller=pipeline.caller,
        **extra,
    )
    outcome.times["search"] = time.perf_counter() - started
    outcome.ranking = [
        {"doc_id": h.doc_id, "name": h.name, "page": h.page_number} for h in answer.hits
    ]
    units = ranked_units(answer.hits, keyed.level)
    if keyed.key:
        outcome.scores |= retrieval_scores(units, keyed.key)
        outcome.first_relevant = first_relevant(units, keyed.key)
    return answer


def ranked_units(hits, level: str) -> list[Hashable]:
    """The ranking in the key's units: (doc_id, page) pairs, or documents in order of their
    best page."""
    if level == "document":
        return [hit.doc_id for hit in hits]
    return [(hit.doc_id, hit.page_number) for hit in hits]


def write_answer(pipeline, keyed: Keyed, answer, options: Options, outcome: Outcome) -> None:
    """The answer from the pages the app would answer from (Settings.top_k, the best first),
    scored against the references with the citations taken out; then the judge's verdict."""
    answered = dataclasses.replace(answer, hits=answer.hits[: pipeline.settings.top_k])
    references = keyed.question.answers
    started = time.perf_counter()
    text = answered.text() if answered.hits else ""
    outcome.times["answer"] = time.perf_counter() - started
    outcome.answer = text
    said = without_citations(text)
    outcome.scores["exact_match"] = exact_match(said, references)
    outcome.scores["f1"] = token_f1(said, references)
    if options.judge and answered.hits:
        started = time.perf_counter()
        pages = answered.pages()[:1]
        score, reply = judge(pipeline.models, keyed.question.text, references, said, pages)
        outcome.times["judge"] = time.perf_counter() - started
        outcome.scores["judge"], outcome.judge_reply = score, reply


def without_citations(text: str) -> str:
    """The answer without its page citations, which no reference answer carries.

    >>> without_citations("Oduya Logistics [facts.pdf p.4].")
    'Oduya Logistics .'
    """
    return re.sub(PATTERN, "", text).strip()


def box_overlap_of(answer, keyed: Keyed, pages: int) -> float | None:
    """The mean overlap of the evidence boxes (``Answer.evidence``) with the reference boxes
    over the reference's pages, a page the answer did not read scoring 0; None when this
    version of the app draws no evidence boxes."""
    if not hasattr(answer, "evidence"):
        return None
    try:
        from rag.view.evidence import box_overlap
    except ImportError:
        return None
    hits = {(hit.doc_id, hit.page_number): hit for hit in answer.hits[:pages]}
    overlaps = []
    for unit, reference in keyed.boxes.items():
        hit = hits.get(unit)
        predicted = [found.box for found in answer.evidence(hit)] if hit else []
        overlaps.append(box_overlap(predicted, reference))
    return mean(overlaps)
