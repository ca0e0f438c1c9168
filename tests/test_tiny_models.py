"""The tiny-model kit's command line: ``python -m devtools.tiny_models OUT_DIR [FAMILY...]``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.tiny_models import BUILDERS, GENERATORS, RERANKERS, RETRIEVERS
from tests.helpers import ROOT


def test_every_family_has_a_builder():
    assert set(RETRIEVERS) | set(GENERATORS) | set(RERANKERS) == set(BUILDERS)


@pytest.mark.models
@pytest.mark.processes
def test_command_builds_loadable_checkpoints(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "devtools.tiny_models", str(tmp_path), "colqwen2", "idefics3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "colqwen2" / "config.json").exists()
    assert (tmp_path / "idefics3" / "config.json").exists()
    assert not (tmp_path / "colpali").exists()  # only what was asked for


def test_unknown_family_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "devtools.tiny_models", str(tmp_path), "gpt5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and "unknown families: gpt5" in result.stderr
