"""Real processes: the app's CLI started with the test's settings and killed (SIGKILL, no
cleanup handler runs) at a chosen moment; waiting for a condition; a process's children."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import ROOT

FAST = {"RAG_DPI": "36", "HF_HUB_OFFLINE": "1"}


def start(*args: str) -> subprocess.Popen:
    """``python *args`` in the repository, at low DPI and offline; its output piped as text."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **FAST},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after(process: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL ``process`` after ``seconds`` unless it ended first; whether it was killed."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()  # SIGKILL: no cleanup handler runs
        process.wait()
        return True
    return False


def wait_until(done: Callable[[], bool], what: str, limit_s: float = 300) -> None:
    """Poll ``done()`` until it is true (a condition, not a guess at how long it takes)."""
    deadline = time.monotonic() + limit_s
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {limit_s} s"
        time.sleep(0.02)


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process below ``pid``, read from /proc."""
    children: dict[int, list[tuple[int, str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append((int(stat.parent.name), name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found
