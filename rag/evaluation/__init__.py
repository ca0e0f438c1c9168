"""Answer quality, measured: questions with known pages (and answers) asked through the app's
own search and answer paths, per fusion mode and with or without the reranker.

The front door: ``evaluate_questions`` (a JSON Lines questions file, ``rag.evaluation.questions``)
and ``evaluate_vidore`` (a local ViDoRe V3 dataset folder, ``rag.evaluation.vidore``), each
returning an ``Evaluation`` that prints as a table, dumps as JSON and writes a Markdown report
with its plot (``rag.evaluation.report``). The arithmetic is ``rag.evaluation.metrics``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.evaluation import report, vidore
from rag.evaluation.questions import DatasetError, Documents, read_questions, resolve
from rag.evaluation.run import Options, Progress, Run, configurations, evaluate

__all__ = ["DatasetError", "Evaluation", "evaluate_questions", "evaluate_vidore"]


@dataclass
class Evaluation:
    """A finished run and where its questions came from."""

    run: Run
    dataset: report.Dataset
    settings: object  # the pipeline's Settings

    def table(self) -> str:
        return report.table(self.run)

    def json(self) -> dict:
        return report.as_json(self.run, self.settings, self.dataset)

    def write_report(self, folder: Path) -> Path:
        return report.write_report(self.run, self.settings, self.dataset, Path(folder))


def indexed_documents(pipeline) -> Documents:
    """The documents the pipeline's caller may read; DatasetError when there are none."""
    documents = pipeline.documents()
    if not documents:
        raise DatasetError(
            f"no documents are indexed in {pipeline.settings.data_dir}: index the documents "
            "the questions are about first (app.py index PATH)"
        )
    return Documents(documents)


def evaluate_questions(
    pipeline,
    path: Path,
    modes: Sequence[str],
    options: Options,
    *,
    said: Callable[[str], None] = lambda line: None,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate a questions file over the pipeline's documents; ``said`` hears one line per
    line or key that was skipped. DatasetError when nothing can be evaluated."""
    chosen = configurations(pipeline.settings, modes)
    questions, bad_lines = read_questions(Path(path))
    keyed, unresolved = resolve(questions, indexed_documents(pipeline))
    problems = bad_lines + unresolved
    for problem in problems:
        said(problem)
    if not keyed:
        raise DatasetError(f"{path}: no question could be evaluated ({len(problems)} skipped)")
    run = evaluate(pipeline, keyed, chosen, options, progress)
    dataset = report.Dataset(str(path), len(questions) + len(bad_lines), problems)
    return Evaluation(run, dataset, pipeline.settings)


def evaluate_vidore(
    pipeline,
    folder: Path,
    modes: Sequence[str],
    options: Options,
    *,
    language: str = "english",
    index_corpus: bool = False,
    said: Callable[[str], None] = lambda line: None,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate a local ViDoRe V3 dataset, indexing its corpus first if ``index_corpus``;
    the search is scoped to the dataset's documents."""
    chosen = configurations(pipeline.settings, modes)
    benchmark = vidore.read_benchmark(Path(folder))
    if index_corpus:
        vidore.index_corpus(pipeline, benchmark, said)
    documents = indexed_documents(pipeline)
    scope = tuple(vidore.scope(benchmark, documents))
    keyed, problems = resolve(vidore.questions(benchmark, language), documents)
    for problem in problems:
        said(problem)
    if not keyed:
        raise DatasetError(f"{folder}: no query in {language!r} has relevant pages")
    options = Options(options.top_k, options.answers, options.judge, scope)
    run = evaluate(pipeline, keyed, chosen, options, progress)
    dataset = report.Dataset(str(folder), len(keyed) + len(problems), problems, vidore.LEADERBOARD)
    return Evaluation(run, dataset, pipeline.settings)
