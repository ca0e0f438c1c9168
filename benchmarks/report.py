"""What every benchmark's report shares: its command line's ``--out``, the machine line, Markdown
tables, and where the report goes.

A benchmark measures into plain data (dataclasses, dicts and lists of numbers and labels) and a
reporter turns that data into Markdown with ``header`` and ``table``; ``publish`` prints the
report and writes it to ``--out``, or, without ``--out``, to ``benchmarks/out/`` (git-ignored),
so that an ordinary run never replaces a committed ``benchmarks/results*.md``: to update one,
name it, e.g. ``--out benchmarks/results-sweep.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"  # where reports go without --out (git-ignored)


def parser(name: str, doc: str | None, results: str) -> argparse.ArgumentParser:
    """The command line of ``python -m benchmarks.<name>``, with its ``--out``; ``results``:
    the report's file name under ``benchmarks/out/`` when ``--out`` is not given."""
    arguments = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    arguments.add_argument(
        "--out",
        type=Path,
        help=f"where to write the report (default: benchmarks/out/{results}; name "
        f"benchmarks/{results} to replace the committed results)",
    )
    return arguments


def run_and_publish(
    argv: list[str] | None,
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], Any],
    report: Callable[[Any], str],
    results: str,
) -> Any:
    """A benchmark's ``main``: its arguments parsed, ``run`` measured, ``report`` published
    (``publish``); the measured data is returned."""
    args = parse_args(argv)
    result = run(args)
    publish(report(result), args.out, results)
    return result


def publish(text: str, out: Path | None, results: str) -> Path:
    """Print the report and write it to ``out`` (or ``benchmarks/out/<results>``); the path
    written, which is also printed (on stderr: stdout is the report)."""
    print(text)
    path = out if out is not None else OUT / results
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"report written to {path}", file=sys.stderr)
    return path


def header(title: str, *facts: str) -> list[str]:
    """A report's title and its list of facts (command, machine, what the figures mean)."""
    return [f"# {title}", "", *(f"- {fact}" for fact in facts)]


def table(rows: Iterable[Sequence[object]], columns: Sequence[str], align: str = "") -> list[str]:
    """A Markdown table of already formatted cells. ``align``: a letter per column, ``l`` (the
    default for a missing letter) or ``r`` (right, for numbers)."""
    align = align.ljust(len(columns), "l")
    rule = "|".join("---:" if side == "r" else "---" for side in align)
    lines = [f"| {' | '.join(columns)} |", f"|{rule}|"]
    return lines + [f"| {' | '.join(str(cell) for cell in row)} |" for row in rows]


def machine() -> str:
    """The CPU, its cores, torch's and numba's threads and the GPU, in one line."""
    import numba
    import torch

    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{model}, {os.cpu_count()} cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, numba {numba.__version__} with "
        f"{numba.get_num_threads()} threads, GPU: {gpu}"
    )
