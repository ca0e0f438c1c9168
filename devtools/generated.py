"""The parts of a document that a devtools command writes: between two marker lines, the rest
written by hand; ``--check`` says whether they are current (the docs tests call it)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class SourceError(Exception):
    """The document or the source it is generated from is not as the generator expects."""


def splice(document: str, begin: str, end: str, generated: str, where: Path) -> str:
    """``document`` with the part between ``begin`` and ``end`` replaced by ``generated``."""
    if begin not in document or end not in document:
        raise SourceError(f"{where.relative_to(ROOT)} lacks the markers {begin!r} and {end!r}")
    head, rest = document.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{generated}{end}{tail}"


def write_or_check(path: Path, wanted: str, check: bool, command: str) -> int:
    """Write ``wanted`` to ``path`` if it differs; with ``check``, only say so (exit 1)."""
    current = path.read_text()
    if wanted == current:
        return 0
    if check:
        print(f"{path.relative_to(ROOT)} is out of date: run {command}", file=sys.stderr)
        return 1
    path.write_text(wanted)
    print(f"rewrote {path.relative_to(ROOT)}")
    return 0
