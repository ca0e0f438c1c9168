"""Placeholder while this family is being written (replaced in this change)."""

from __future__ import annotations

from rag.errors import UnsupportedFileError


def check(path, name, settings) -> None:
    raise UnsupportedFileError(f"{name}: not read yet")


def to_pdf(path, target, name, budget, settings) -> tuple[str, ...]:
    raise UnsupportedFileError(f"{name}: not read yet")
