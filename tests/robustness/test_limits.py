"""Limits that hold on their own: poppler carries its CPU and memory limits and dies with the
app; one pathological page is refused after the per-page limit, not the whole file's."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.errors import PdfLimitError
from rag.ingest import sandbox
from rag.ingest.pdf import inspect_pdf, render_pages
from tests.helpers import ROOT, pdfs

RENDER_FOREVER = """
import sys
from pathlib import Path
from rag.config import Settings
from rag.ingest.pdf import inspect_pdf, render_pages
settings = Settings(render_timeout_s=600, render_page_timeout_s=600, page_workers=1)
path = Path(sys.argv[1])
list(render_pages(path, path.parent / "pages", settings, inspect_pdf(path, settings)))
"""


def children_named(parent: int, name: str) -> list[int]:
    """Live processes whose parent is ``parent`` and whose command is ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and process_state(int(entry.name)) not in (None, "Z"):
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            command, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.split(")")[-1]
            if command == name and int(fields.split()[1]) == parent:
                found.append(int(entry.name))
    return found


def process_state(pid: int) -> str | None:
    """The process's state letter (R, S, Z, ...), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.split(")")[-1].split()[0]


def wait_for(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()


@pytest.mark.processes
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_poppler_dies_with_the_app_and_carries_its_own_cpu_limit(tmp_path):
    path = pdfs.endless_drawing(tmp_path / "endless.pdf")
    app = subprocess.Popen([sys.executable, "-c", RENDER_FOREVER, str(path)], cwd=ROOT)
    try:
        renderer = wait_for(lambda: children_named(app.pid, "pdftoppm"), timeout=60)
        assert renderer, "pdftoppm never started"
        (pid,) = renderer
        limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
        cpu = next(line for line in limits if line.startswith("Max cpu time")).split()
        assert cpu[3] != "unlimited" and int(cpu[3]) <= 600 + 1  # seconds, set on the child
        memory = next(line for line in limits if line.startswith("Max address space")).split()
        assert memory[3] != "unlimited"
        os.kill(app.pid, signal.SIGKILL)  # no handler of the app's runs
        app.wait()
        assert wait_for(lambda: process_state(pid) in (None, "Z"), timeout=5), (
            f"pdftoppm {pid} outlived the app"
        )
    finally:
        app.kill()
        app.wait()


def test_a_stalled_step_is_stopped_after_the_step_limit(tmp_path):
    """The watchdog on a stand-in tool: steps every 0.3 s pass a 1.5 s step limit (the call as
    a whole takes longer than one step may); a step of 30 s is stopped."""
    budget = sandbox.Budget.start(seconds=60, memory_mb=512, page_seconds=1.5)
    count = lambda: len(list(tmp_path.glob("step-*")))  # noqa: E731
    steady = "for i in 1 2 3 4 5 6 7 8; do sleep 0.3; touch $0/step-$i; done"
    assert sandbox.run("sh", ["-c", steady, str(tmp_path)], budget, count).returncode == 0
    assert count() == 8
    for step in tmp_path.glob("step-*"):
        step.unlink()
    stalls = "touch $0/step-1; touch $0/step-2; sleep 30; touch $0/step-3"
    with pytest.raises(sandbox.OverTime) as over:  # left alone it would finish and return
        sandbox.run("sh", ["-c", stalls, str(tmp_path)], budget, count)
    assert over.value.stalled_after == 2  # the step watchdog, not the 60 s file deadline


def test_a_pathological_page_is_refused_after_the_per_page_limit(settings, tmp_path):
    path = pdfs.nested_forms(tmp_path / "nested.pdf")
    settings = dataclasses.replace(settings, render_timeout_s=120, render_page_timeout_s=2)
    with pytest.raises(PdfLimitError) as refused:
        list(render_pages(path, tmp_path / "pages", settings, inspect_pdf(path, settings)))
    message = str(refused.value)  # the page's 2 s deadline fired, not the file's 120 s
    assert message.startswith("nested.pdf: page 1 took longer than the 2 s allowed per page")
    assert "RAG_RENDER_PAGE_TIMEOUT_S" in message and "\n" not in message
    assert not list((tmp_path / "pages").glob("*")), "a refused file leaves no pages"


def test_a_long_document_is_not_held_to_the_per_page_limit(settings, tmp_path):
    """Each chunk of pages is one poppler call: only a page, not a call, gets the page limit."""
    path = pdfs.blank_pages(tmp_path / "long.pdf", [(612, 792)] * 40)
    settings = dataclasses.replace(settings, render_page_timeout_s=1, render_chunk_pages=40)
    pages = list(render_pages(path, tmp_path / "pages", settings, inspect_pdf(path, settings)))
    assert len(pages) == 40
