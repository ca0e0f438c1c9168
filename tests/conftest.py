"""Shared fixtures. Tests run offline: HF_HUB_OFFLINE is forced before any hub import."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest

from rag.config import Settings
from rag.models.torch_compat import ensure_torchvision

ensure_torchvision()  # tests import colpali-engine and transformers directly

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


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
def sample_pdf() -> Path:
    return SAMPLES / "annual_report.pdf"
