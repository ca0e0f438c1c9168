"""What an evaluation run is shown as: a table for the terminal (configurations as rows,
metrics as columns), one JSON object, and a Markdown report with one plot (each metric by
configuration) saved beside it as a PNG.

The plot is drawn on a bare matplotlib ``Figure`` (the Agg canvas, no pyplot state), imported
only when a report is written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.evaluation.run import STAGES, Run

PLOT = "metrics.png"
REPORT = "report.md"
SETTINGS = ("retriever", "generator", "index", "index_mode", "hybrid_weight", "top_k", "dpi")


@dataclass(frozen=True)
class Dataset:
    """Where the questions came from: ``source`` (a file or folder), ``read`` questions,
    ``problems`` (one line each: the lines and keys that were skipped), ``note`` (how the
    numbers compare, for a benchmark)."""

    source: str
    read: int
    problems: list[str] = field(default_factory=list)
    note: str = ""


def settings_of(settings, run: Run) -> dict:
    """The settings the numbers depend on."""
    chosen = {name: _plain(getattr(settings, name)) for name in SETTINGS}
    chosen["reranker"] = getattr(settings, "reranker", "off")
    chosen["retrieved"] = run.options.top_k
    chosen |= {"answers": run.options.answers, "judge": run.options.judge}
    chosen["configurations"] = [c.name for c in run.configurations]
    return chosen


def _plain(value):
    return value if isinstance(value, (int, float, bool)) or value is None else str(value)


def as_json(run: Run, settings, dataset: Dataset) -> dict:
    """One object: settings, dataset, per-configuration metrics and timings, per-question
    results."""
    return {
        "settings": settings_of(settings, run),
        "dataset": asdict(dataset) | {"evaluated": len(run.questions)},
        "configurations": [
            {
                "name": c.name,
                "mode": c.mode,
                "rerank": c.rerank,
                "scored": run.scored(c),
                "metrics": run.metrics(c),
                "timings": run.timings(c),
            }
            for c in run.configurations
        ],
        "questions": [question_json(run, index) for index in range(len(run.questions))],
    }


def question_json(run: Run, index: int) -> dict:
    keyed = run.questions[index]
    question = keyed.question
    record = {"where": question.where, "id": question.id, "question": question.text}
    record["key"] = [
        {"unit": list(u) if isinstance(u, tuple) else u, "grade": g} for u, g in keyed.key.items()
    ]
    record["level"] = keyed.level
    record["results"] = {c.name: asdict(run.outcomes[c.name][index]) for c in run.configurations}
    return record


def number(value: float | None) -> str:
    """A metric as the table shows it.

    >>> number(0.5), number(None)
    ('0.500', '-')
    """
    return "-" if value is None else f"{value:.3f}"


def table(run: Run, markdown: bool = False) -> str:
    """Configurations as rows, metrics as columns (and the mean search time)."""
    columns = [*run.metric_names, "search s"]
    rows = []
    for configuration in run.configurations:
        metrics = run.metrics(configuration)
        search = run.timings(configuration).get("search", {}).get("mean")
        rows.append(
            [configuration.name, *(number(metrics[n]) for n in run.metric_names), number(search)]
        )
    header = ["configuration", *columns]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in [header, *rows]
    )


def timings_table(run: Run) -> str:
    """Markdown: each configuration's stages, mean / p50 / p95 in seconds."""
    lines = ["| configuration | stage | mean s | p50 s | p95 s |", "|---|---|---|---|---|"]
    for configuration in run.configurations:
        for stage, summary in run.timings(configuration).items():
            values = " | ".join(f"{summary[s]:.3f}" for s in ("mean", "p50", "p95"))
            lines.append(f"| {configuration.name} | {stage} | {values} |")
    return "\n".join(lines)


def misses(run: Run, shown: int = 3) -> list[str]:
    """Markdown lines: per configuration, each scored question whose best page is not in its
    key, with where the key's first page was found and what came first instead."""
    lines = []
    for configuration in run.configurations:
        for keyed, outcome in zip(run.questions, run.outcomes[configuration.name], strict=True):
            if outcome.error:
                lines.append(
                    f"- {configuration.name}: {keyed.question.where}: error: {outcome.error}"
                )
            elif keyed.key and outcome.first_relevant != 1:
                found = outcome.first_relevant or "not in the results"
                got = ", ".join(f"{h['name']} p.{h['page']}" for h in outcome.ranking[:shown])
                lines.append(
                    f"- {configuration.name}: {keyed.question.where} "
                    f"({_escaped(keyed.question.text)}): first relevant at {found}; got {got}"
                )
    return lines


def _escaped(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def plot(run: Run, path: Path) -> Path:
    """Each metric (x) by configuration (bars), 0-1, saved as a PNG at ``path``."""
    from matplotlib.figure import Figure

    names = run.metric_names
    figure = Figure(figsize=(max(7.0, 1.2 * len(names)), 3.6), dpi=100)
    axes = figure.subplots()
    width = 0.8 / max(len(run.configurations), 1)
    for place, configuration in enumerate(run.configurations):
        metrics = run.metrics(configuration)
        xs = [i + (place - (len(run.configurations) - 1) / 2) * width for i in range(len(names))]
        heights = [metrics[name] or 0.0 for name in names]
        axes.bar(xs, heights, width, label=configuration.name)
    axes.set_xticks(range(len(names)), names)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("score (mean over questions)")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def write_report(run: Run, settings, dataset: Dataset, folder: Path) -> Path:
    """``folder``/report.md and ``folder``/metrics.png; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    plot(run, folder / PLOT)
    chosen = settings_of(settings, run)
    lines = ["# Evaluation report", "", "## Settings", ""]
    lines += [f"- {name}: `{value}`" for name, value in chosen.items()]
    lines += ["", "## Dataset", "", f"- source: `{dataset.source}`"]
    lines += [f"- questions read: {dataset.read}; evaluated: {len(run.questions)}"]
    lines += [f"- skipped: {problem}" for problem in dataset.problems]
    if dataset.note:
        lines += ["", dataset.note]
    lines += [
        "",
        "## Results",
        "",
        table(run, markdown=True),
        "",
        f"![metric by configuration]({PLOT})",
    ]
    lines += ["", "## Misses", "", "Questions whose best page is not one of their key's:", ""]
    lines += misses(run) or ["None."]
    lines += ["", "## Timings", "", f"Seconds per question, stages: {', '.join(STAGES)}.", ""]
    lines += [timings_table(run), ""]
    path = folder / REPORT
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
