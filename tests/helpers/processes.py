"""The app's CLI as a real process: started with the test's settings, and killed (SIGKILL, no
cleanup handler runs) at a chosen moment."""

from __future__ import annotations

import os
import subprocess
import sys

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
