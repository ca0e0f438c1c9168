"""Bytes on disk, for tests that need a file of a given content."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, data: bytes) -> Path:
    """``data`` written at ``path`` (its folder made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated(path: Path, source: Path | bytes, keep: int | None = None) -> Path:
    """The first ``keep`` bytes of ``source`` (half of it by default) written at ``path``: a
    file cut short, as an interrupted download leaves it."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    return write(path, data[: len(data) // 2 if keep is None else keep])
