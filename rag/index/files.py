"""Crash-safe file operations shared by the index backends.

New documents are written into ``<root>/.staging/<pid>-<random>/`` and committed by renaming
that folder into place; entries name their process, so leftovers of a dead process can be
told from the work of a live one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staging_folder(root: Path) -> Iterator[Path]:
    """A fresh folder under ``root/.staging``, removed on exit unless renamed away."""
    parent = root / ".staging"
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=f"{os.getpid()}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def trash_folder(root: Path) -> Path:
    """A name under ``root/.staging`` to rename a deleted document to before removing it."""
    return root / ".staging" / f"{os.getpid()}-deleted-{uuid.uuid4().hex}"


def clear_staging(root: Path) -> None:
    """Discard what a crashed or killed process left in ``root/.staging``."""
    parent = root / ".staging"
    if not parent.exists():
        return
    for entry in parent.iterdir():
        pid = entry.name.split("-", 1)[0]
        if not (pid.isdigit() and alive(int(pid))):
            shutil.rmtree(entry, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
