"""poppler's command-line tools (pdfinfo, pdftoppm), each in a child process under a time limit
and an address-space limit, so that one hostile file costs at most a bounded number of seconds
and megabytes while the app goes on serving everyone else.

The memory limit is set by a tiny Python launcher that calls ``setrlimit`` and then ``exec``s the
tool (no ``preexec_fn``, which is unsafe in a threaded server). Arguments go to the tool as a
list, never through a shell, and the file is passed by absolute path so that a name starting
with ``-`` cannot be read as an option.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_LAUNCHER = (
    "import os, resource, sys\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


class PopplerMissing(RuntimeError):
    """poppler-utils is not installed (a setup problem, not the file's)."""


class OverTime(Exception):
    """The tool ran past its deadline and was killed."""


@dataclass(frozen=True)
class Budget:
    """What one file may cost in total: a deadline shared by every call, and a memory cap."""

    seconds: float
    memory_mb: int
    started: float = 0.0

    @classmethod
    def start(cls, seconds: float, memory_mb: int) -> Budget:
        return cls(seconds, memory_mb, time.monotonic())

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        """Ended by a signal (e.g. SIGABRT or SIGSEGV when an allocation over the cap failed)."""
        return self.returncode < 0


def run(tool: str, arguments: list[str], budget: Budget) -> Result:
    """Run ``tool arguments...`` under ``budget``; raises OverTime or PopplerMissing."""
    executable = shutil.which(tool)
    if executable is None:
        raise PopplerMissing(f"{tool} not found: apt-get install -y poppler-utils")
    left = budget.left()
    if left <= 0:
        raise OverTime
    limit = str(budget.memory_mb * 2**20)
    command = [sys.executable, "-c", _LAUNCHER, limit, executable, *arguments]
    try:
        done = subprocess.run(command, capture_output=True, timeout=left, check=False)
    except subprocess.TimeoutExpired:  # run() has killed the child
        raise OverTime from None
    decode = lambda data: data.decode("utf-8", errors="replace")  # noqa: E731
    return Result(done.returncode, decode(done.stdout), decode(done.stderr))


def password_arguments(password: str | None) -> list[str]:
    """Both poppler password options: the user password opens the file; an owner password
    given by mistake opens it too."""
    return ["-upw", password, "-opw", password] if password else []


def absolute(path: Path) -> str:
    return str(Path(path).resolve())
