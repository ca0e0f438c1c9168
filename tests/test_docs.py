"""The documentation stays true to the tree: the Layout of docs/architecture.md names every
module, docs/configuration.md's tables are what ``python -m devtools.config_doc`` makes of
rag/config.py, every relative link resolves, and the README stays short."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

import pytest

from devtools import config_doc, types_doc

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 400
# Named in the Layout before they land (issue 27): not required to exist yet.
PLANNED = {
    "rag/library.py",
    "rag/asking.py",
    "rag/index/hybrid.py",
    "rag/ingest/__init__.py",
    "rag/models/loaded.py",
    "rag/models/encoding.py",
}

DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def tracked(*patterns: str) -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", *patterns], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(listed.stdout.split())


def layout_section() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    match = re.search(r"^## Layout\n(.*?)(?=^## )", text, re.DOTALL | re.MULTILINE)
    assert match, "docs/architecture.md has no '## Layout' section"
    return match.group(1)


def layout_names() -> set[str]:
    """The paths the Layout's code block names: the first word of each of its lines."""
    block = re.search(r"^```\n(.*?)^```", layout_section(), re.DOTALL | re.MULTILINE)
    assert block, "the Layout has no code block"
    return {line.split()[0] for line in block.group(1).splitlines() if line.strip()}


def test_the_layout_names_every_module_of_rag_and_ui_and_app_py():
    modules = {path for path in tracked("rag", "ui") if path.endswith(".py")} | {"app.py"}
    missing = sorted(modules - layout_names())
    assert missing == [], f"name these in docs/architecture.md's Layout: {missing}"


def test_the_layout_names_nothing_that_is_not_there():
    names = {name for name in layout_names() if name.endswith(".py")}
    gone = sorted(names - tracked("rag", "ui", "app.py", "devtools") - PLANNED)
    assert gone == [], f"docs/architecture.md's Layout names files that do not exist: {gone}"


def test_the_configuration_tables_are_current():
    document = (ROOT / "docs" / "configuration.md").read_text()
    assert config_doc.render(document) == document, "run: python -m devtools.config_doc"


def test_the_lists_of_types_are_the_table_of_formats():
    assert types_doc.main(["--check"]) == 0, "run: python -m devtools.types_doc"
    readme = (ROOT / "README.md").read_text()
    for ending in types_doc.FORMATS:
        assert re.search(rf"\b{ending.ending[1:]}\b", readme), ending  # none left out


def test_every_variable_the_app_reads_is_in_the_configuration_tables():
    document = (ROOT / "docs" / "configuration.md").read_text()
    sources = [ROOT / "app.py", *(ROOT / "rag").rglob("*.py"), *(ROOT / "ui").rglob("*.py")]
    read = set()
    for source in sources:
        read |= set(re.findall(r"\.get\(\s*\"(RAG_[A-Z0-9_]+)\"", source.read_text()))
    missing = sorted(name for name in read if f"`{name}`" not in document)
    assert missing == [], f"add these to devtools/config_doc.py's SERVER table: {missing}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = INLINE_CODE.sub(lambda code: code.group(0)[1:-1], heading.strip()).lower()
    kept = "".join(
        char
        for char in text
        if char in " -_" or unicodedata.category(char)[0] in "LN"  # letters and digits
    )
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in FENCE.sub("", path.read_text()).splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    text = INLINE_CODE.sub("", FENCE.sub("", path.read_text()))
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


def resolves(document: Path, target: str) -> bool:
    """Whether a link's file exists and, in a Markdown file, its ``#anchor`` is a heading."""
    file, _, anchor = target.partition("#")
    resolved = (document.parent / file).resolve() if file else document
    if not resolved.exists():
        return False
    return not anchor or resolved.suffix != ".md" or anchor in anchors(resolved)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_points_to_something_that_exists(document):
    broken = [target for target in relative_links(document) if not resolves(document, target)]
    assert broken == []


def test_the_readme_is_short():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_the_readme_keeps_the_space_front_matter():
    head = (ROOT / "README.md").read_text().split("\n---\n", 1)[0]
    assert head.startswith("---\n")
    for key in ("sdk: gradio", "app_file: app.py"):
        assert key in head
