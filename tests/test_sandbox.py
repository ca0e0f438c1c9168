"""The launcher every external tool runs under (rag.ingest.sandbox): a missing tool is named,
with the package that brings it, whichever tool it is."""

from __future__ import annotations

import pytest

from rag.errors import RagError
from rag.ingest import sandbox


@pytest.mark.parametrize(
    ("tool", "package"),
    [
        ("pdftoppm", "poppler-utils"),
        ("pdftotext", "poppler-utils"),
        ("tesseract", "tesseract-ocr"),
        ("soffice", "libreoffice-writer-nogui"),
        ("/opt/odd/some-tool", "some-tool"),
    ],
)
def test_a_missing_tool_names_itself_and_its_package(tool, package, monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    budget = sandbox.Budget.start(seconds=5, memory_mb=256)
    with pytest.raises(sandbox.ToolMissing) as missing:
        sandbox.run(tool, ["--version"], budget)
    assert str(missing.value) == f"{tool} not found: apt-get install -y {package}"
    assert (missing.value.tool, missing.value.package) == (tool, package)
    assert isinstance(missing.value, RagError)  # a setup problem, told in one line


def test_a_tool_that_is_there_runs_under_its_limits():
    budget = sandbox.Budget.start(seconds=20, memory_mb=512)
    result = sandbox.run("pdfinfo", ["-v"], budget)
    assert result.returncode == 0 and "pdfinfo" in result.stderr + result.stdout
