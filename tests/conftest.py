"""Shared fixtures, and the test tiers. Tests run offline: HF_HUB_OFFLINE is forced before any
hub import.

Tiers (markers, registered in pyproject.toml): ``browser``, ``processes``, ``office`` and
``scale`` are the slow ones, and every test carrying one of them is marked ``slow`` here, so
``pytest -m "not slow"`` (``make test-fast``) runs the rest; ``make test`` runs everything.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

import dataclasses
from pathlib import Path

import pytest

from rag.config import Settings
from rag.models.torch_compat import ensure_torchvision
from tests.helpers import SAMPLES

ensure_torchvision()  # tests import colpali-engine and transformers directly

SLOW_TIERS = ("browser", "processes", "office", "scale")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of a slow tier is also ``slow``."""
    for item in items:
        if any(item.get_closest_marker(tier) for tier in SLOW_TIERS):
            item.add_marker(pytest.mark.slow)


class TinyModels:
    """``tiny_models / "colqwen2"``: that family's tiny checkpoint folder, built on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __truediv__(self, family: str) -> Path:
        from devtools.tiny_models import build

        return build(family, self.root)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    """Tiny checkpoints, built once per session (or kept in $TINY_MODELS_DIR across runs)."""
    keep = os.environ.get("TINY_MODELS_DIR")
    return TinyModels(Path(keep) if keep else tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Fast settings for tests: low DPI, tiny answers, index under tmp_path."""
    return Settings(data_dir=tmp_path / "data", dpi=48, max_new_tokens=6, top_k=2)


@pytest.fixture
def indexing_settings(tiny_models, tmp_path) -> Settings:
    """Settings to index with: the tiny ColQwen2 at 48 DPI, the data under tmp_path."""
    return Settings(data_dir=tmp_path / "data", retriever=str(tiny_models / "colqwen2"), dpi=48)


@pytest.fixture
def answering_settings(tiny_models, settings) -> Settings:
    """``settings`` with the tiny ColQwen2 and Qwen2-VL, and small pages for the answerer."""
    return dataclasses.replace(
        settings,
        retriever=str(tiny_models / "colqwen2"),
        generator=str(tiny_models / "qwen2_vl"),
        answer_min_pixels=28 * 28 * 4,
        answer_max_pixels=28 * 28 * 64,
    )


@pytest.fixture
def sample_pdf() -> Path:
    return SAMPLES / "annual_report.pdf"
