"""Crash-safe file operations shared by the index backends.

New documents are written into ``<root>/.staging/<pid>-<random>/`` and committed by renaming
that folder into place; entries name their process, so leftovers of a dead process can be
told from the work of a live one. Writers in several processes (two ``index`` jobs, a CLI job
beside the web app) take turns through ``writer_lock`` to commit and delete; readers take no
lock: a commit or a delete is one rename, which they see whole or not at all.
"""

from __future__ import annotations

import fcntl
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


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Held by one writer at a time across processes (and across index objects in one
    process): ``flock`` on ``root/.lock``, released by the kernel if the holder dies."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def folder_version(folder: Path) -> tuple[int, int, int]:
    """Changes whenever an entry is renamed into or out of ``folder`` (mtime, link count and
    inode: the link count catches two changes within one tick of a coarse mtime clock);
    (0, 0, 0) if it does not exist."""
    try:
        status = folder.stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (status.st_mtime_ns, status.st_nlink, status.st_ino)


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
