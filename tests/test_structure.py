"""The boundaries DESIGN.md draws: rag/ never imports gradio; ui/ never imports torch or models."""

from __future__ import annotations

import ast
import importlib
import sys
import types

import pytest

from tests.helpers import ROOT

UI_FORBIDDEN = {"torch", "transformers", "colpali_engine", "peft", "qwen_vl_utils"}


def imported_modules(folder: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / folder).rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_rag_never_imports_gradio():
    offenders = {f: n for f, n in imported_modules("rag").items() if "gradio" in n}
    assert offenders == {}


def test_ui_never_imports_torch_or_model_classes():
    offenders = {f: n & UI_FORBIDDEN for f, n in imported_modules("ui").items() if n & UI_FORBIDDEN}
    assert offenders == {}


def test_gpu_decorator_is_a_no_op_without_spaces():
    from ui import gpu

    def handler():
        return 1

    assert gpu.gpu(handler) is handler


def test_gpu_decorator_uses_spaces_gpu_on_a_space(monkeypatch):
    calls = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda fn: calls.append(fn) or fn
    monkeypatch.setitem(sys.modules, "spaces", fake)
    import ui.gpu

    reloaded = importlib.reload(ui.gpu)
    try:

        def handler():
            return 1

        reloaded.gpu(handler)
        assert calls == [handler]
    finally:
        monkeypatch.delitem(sys.modules, "spaces")
        importlib.reload(ui.gpu)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ann:pw", [("ann", "pw")]),
        ("ann:pw, bob:p:w", [("ann", "pw"), ("bob", "p:w")]),
        (None, None),
    ],
)
def test_auth_parsing(value, expected):
    from ui.app import parse_auth

    assert parse_auth(value) == expected


def test_bad_auth_is_refused():
    from ui.app import parse_auth

    with pytest.raises(ValueError, match="user:password"):
        parse_auth("nopassword")


def imported_names(path) -> set[str]:
    """Every dotted name a module's imports can reach, anywhere in it (a function's own imports
    too): ``from tests import test_ui`` gives ``tests`` and ``tests.test_ui``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names.add(module)
            names |= {f"{module}.{alias.name}".replace("..", ".") for alias in node.names}
    return names


def test_no_test_module_imports_another_or_the_conftest():
    """Shared helpers live in tests/helpers/; a test module is never a library for another
    (importing one runs its fixtures and marks again, and hides what is shared), and nothing
    under tests/ imports the conftest (pytest loads it; helpers import tests.helpers)."""
    offenders = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        bad = {
            name
            for name in imported_names(path)
            if any(part.startswith("test_") or part == "conftest" for part in name.split("."))
        }
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}
