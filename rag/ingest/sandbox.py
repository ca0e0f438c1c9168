"""Every external tool ingestion runs (poppler's pdfinfo, pdftoppm, pdftotext and pdftohtml,
Tesseract, LibreOffice, and Python with Pillow for images), each in a child process that carries
its own limits, so that one hostile file costs at most a bounded number of seconds and megabytes
while the app goes on serving everyone else, and no child outlives the app.

A tiny Python launcher sets the limits on the child itself and then ``exec``s the tool (no
``preexec_fn``, which is unsafe in a threaded server):

- ``RLIMIT_AS``: the file's memory cap;
- ``RLIMIT_CPU``: the call's time budget, in CPU seconds, so that even a child the app can no
  longer watch is ended by the kernel when its budget is spent;
- ``PR_SET_PDEATHSIG`` (Linux): the kernel kills the child when the app dies (``kill -9``, an
  OOM kill, a container stop) instead of leaving it running;
- ``RLIMIT_CORE`` 0: a crash of the tool on a hostile file leaves no core file behind.

The app also watches each call: past the file's deadline, or (with ``stall_s``) when the
``progress`` count has not grown for that many seconds, it kills the child. Arguments go to the
tool as a list, never through a shell, and the file is passed by absolute path so that a name
starting with ``-`` cannot be read as an option.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConversionError, PdfLimitError, PdfTooLargeError, RagError

_LAUNCHER = (
    "import os, resource, sys\n"
    "memory, cpu, parent = (int(value) for value in sys.argv[1:4])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (memory, memory))\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes, signal\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "    if os.getppid() != parent:  # the app died before the line above took effect\n"
    "        os._exit(1)\n"
    "os.execvp(sys.argv[4], sys.argv[4:])\n"
)
# How often a running call is checked against its deadline and its progress.
POLL_S = 0.1

Argument = str | bytes  # bytes: a password in the exact encoding the file needs


# The Debian package that brings each tool, for the message when one is missing.
PACKAGES = {
    "pdfinfo": "poppler-utils",
    "pdftoppm": "poppler-utils",
    "pdftotext": "poppler-utils",
    "pdftohtml": "poppler-utils",
    "pdfunite": "poppler-utils",
    "pdftocairo": "poppler-utils",
    "tesseract": "tesseract-ocr",
    "soffice": "libreoffice-writer-nogui",
    "libreoffice": "libreoffice-writer-nogui",
}


class ToolMissing(RagError):
    """An external tool is not installed (a setup problem, not the file's, so never a file's
    refusal); the message names the tool and the package that brings it."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.package = PACKAGES.get(Path(tool).name, Path(tool).name)
        super().__init__(f"{tool} not found: apt-get install -y {self.package}")


class OverTime(Exception):
    """The tool ran past a deadline and was killed: the file's (``stalled_after`` None) or,
    after ``stalled_after`` steps, one step's."""

    def __init__(self, stalled_after: int | None = None) -> None:
        super().__init__()
        self.stalled_after = stalled_after


@dataclass(frozen=True)
class Budget:
    """What one file may cost: a deadline shared by every call, a memory cap, and how long one
    page may take to render (``page_seconds``)."""

    seconds: float
    memory_mb: int
    page_seconds: float = math.inf
    started: float = 0.0

    @classmethod
    def start(cls, seconds: float, memory_mb: int, page_seconds: float = math.inf) -> Budget:
        return cls(seconds, memory_mb, page_seconds, time.monotonic())

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


def run(
    tool: str,
    arguments: Sequence[Argument],
    budget: Budget,
    progress: Callable[[], int] | None = None,
) -> Result:
    """Run ``tool arguments...`` under ``budget``; raises OverTime or ToolMissing.

    ``progress``: a count of steps done (e.g. pages written); the call is killed when it has
    not grown for ``budget.page_seconds`` (the first step's clock starts with the call)."""
    executable = shutil.which(tool)
    if executable is None:
        raise ToolMissing(tool)
    left = budget.left()
    if left <= 0:
        raise OverTime
    limits = [str(budget.memory_mb * 2**20), str(math.ceil(left) + 1), str(os.getpid())]
    command = [sys.executable, "-c", _LAUNCHER, *limits, executable, *arguments]
    # Its own session and process group, so that killing it ends anything it started, too.
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    with child:
        try:
            stdout, stderr = _wait(child, time.monotonic() + left, budget.page_seconds, progress)
        except BaseException:
            _kill_group(child)
            raise
    if child.returncode == -signal.SIGXCPU:  # the child's own CPU limit ended it
        raise OverTime
    decode = lambda data: data.decode("utf-8", errors="replace")  # noqa: E731
    return Result(child.returncode, decode(stdout), decode(stderr))


def _wait(
    child: subprocess.Popen,
    deadline: float,
    step_seconds: float,
    progress: Callable[[], int] | None,
) -> tuple[bytes, bytes]:
    """The child's output once it exits; OverTime past ``deadline`` or a stalled step."""
    steps, step_started = 0, time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise OverTime
        try:
            return child.communicate(timeout=min(POLL_S, deadline - now))
        except subprocess.TimeoutExpired:  # still running: output so far is kept
            pass
        if progress is None:
            continue
        done = progress()
        if done != steps:
            steps, step_started = done, time.monotonic()
        elif time.monotonic() - step_started > step_seconds:
            raise OverTime(stalled_after=steps)


def _kill_group(child: subprocess.Popen) -> None:
    """SIGKILL the child's process group and reap the child."""
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(child.pid, signal.SIGKILL)
    child.communicate()


def absolute(path: Path) -> str:
    return str(Path(path).resolve())


# A Python child's exit status for a file it refuses, and for a file over a limit; either way
# its last line on stderr is the reason, for people.
REFUSED = 3
OVER_LIMIT = 4
_PYTHON_CHILD = (
    "import importlib, sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "sys.exit(importlib.import_module(sys.argv[2]).main(sys.argv[3:]))\n"
)
_REPOSITORY = str(Path(__file__).resolve().parent.parent.parent)


def run_python(
    module: str, arguments: Sequence[str], budget: Budget, name: str, doing: str
) -> Result:
    """Run ``module.main(arguments)`` of this repository in a Python child under ``budget``
    (what reads untrusted content with a Python library: Pillow, WeasyPrint, e-mail parsers).
    Raises the file's one-line PdfError for the ways every such child fails: over time, over
    memory, refused (``REFUSED``), over a limit (``OVER_LIMIT``), ``doing`` (``reading the
    image``) saying what took too long; returns the Result otherwise."""
    command = ["-c", _PYTHON_CHILD, _REPOSITORY, module, *arguments]
    try:
        result = run(sys.executable, command, budget)
    except OverTime:
        raise PdfLimitError(
            f"{name}: {doing} took longer than the {budget.seconds:g} s allowed per file "
            "(RAG_RENDER_TIMEOUT_S)"
        ) from None
    said = last_line(result.stderr)
    if result.returncode == OVER_LIMIT:
        raise PdfTooLargeError(f"{name}: {said}")
    if result.returncode == REFUSED:
        raise ConversionError(f"{name}: {said}")
    if result.returncode != 0 and (result.killed or "MemoryError" in result.stderr):
        raise PdfLimitError(
            f"{name}: {doing} needed more than the memory allowed per file (RAG_RENDER_MEMORY_MB)"
        )
    return result


def last_line(text: str) -> str:
    """The last non-empty line of a child's output, for a message (at most 300 characters)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
