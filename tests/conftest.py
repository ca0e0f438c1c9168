"""Shared fixtures. Tests run offline: HF_HUB_OFFLINE is forced before any hub import."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest

from rag.config import Settings
from rag.torch_compat import ensure_torchvision

ensure_torchvision()  # tests import colpali-engine and transformers directly

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Root folder of every family's tiny checkpoint, built once per test session."""
    from tests.tiny_models import build_all

    root = tmp_path_factory.mktemp("tiny-models")
    build_all(root)
    return root


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Fast settings for tests: low DPI, tiny answers, index under tmp_path."""
    return Settings(data_dir=tmp_path / "data", dpi=48, max_new_tokens=6, top_k=2)


@pytest.fixture
def sample_pdf() -> Path:
    return SAMPLES / "annual_report.pdf"
