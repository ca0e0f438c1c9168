"""The fast tier's share of the tests that run over every model family: one representative
of each side (the families the app's own tests use everywhere), the rest marked slow, so
``make test-fast`` still loads, embeds and answers through the real code, and ``make test``
covers every family."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

FAST_FAMILIES = ("colqwen2", "qwen2_vl")


def families(names: Iterable[str], fast: Iterable[str] = FAST_FAMILIES) -> list:
    """``names`` as pytest params (their ids unchanged): every one not in ``fast`` is slow."""
    fast = set(fast)
    return [name if name in fast else pytest.param(name, marks=pytest.mark.slow) for name in names]
