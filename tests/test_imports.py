"""The import graph of rag/ and ui/, read from the source (every import statement, including
those inside functions and under TYPE_CHECKING, so a circle cannot hide behind a lazy import):
no circle anywhere, and the front ends reach the engine only through its face, ``rag``."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGES = ("rag", "ui")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports: ``from a.b import c`` is ``a.b.c`` when
    that is a module, else ``a.b``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                inner = f"{node.module}.{alias.name}"
                found.add(inner if inner in known else node.module)
    return found & known


def graph() -> dict[str, set[str]]:
    found = modules()
    names = set(found)
    return {name: imports_of(path, names) - {name} for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_circles_are_found_in_a_made_up_graph():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(edges) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_of_rag_and_ui_has_no_circle():
    edges = graph()
    assert len(edges) > 60  # the whole engine and UI were read
    assert circles(edges) == []


def test_the_front_ends_use_only_the_engines_face():
    """ui/ and app.py import the engine as ``from rag import ...`` (``rag/__init__.py``), never
    one of its modules: the engine can move its rooms without the front ends noticing."""
    everything = set(modules())
    engine = {name for name in everything if name.startswith("rag.")}
    fronts = {name: path for name, path in modules().items() if name.startswith("ui")}
    fronts["app"] = ROOT / "app.py"
    reached = {name: imports_of(path, everything) & engine for name, path in fronts.items()}
    assert {name: sorted(found) for name, found in reached.items() if found} == {}
    assert "rag" in imports_of(ROOT / "app.py", everything)  # and it does use the face


def test_importing_the_face_loads_no_model_library():
    import subprocess
    import sys

    probe = (
        "import sys, rag; rag.Settings; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
