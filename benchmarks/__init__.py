"""Benchmarks, each run as ``python -m benchmarks.<name>``; each prints its table and writes it to
a results file (``--out``)."""

from __future__ import annotations

import os
from pathlib import Path


def offline() -> None:
    """Never contact the hub (every benchmark builds its own models) and make the model
    libraries importable (``rag.torch_compat``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.torch_compat import ensure_torchvision

    ensure_torchvision()


def publish(text: str, out: Path) -> str:
    """Print the results and write them to ``out``."""
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def cpu_dtype() -> str:
    """The dtype ``RAG_DTYPE=auto`` computes the models in on this CPU, e.g. ``bfloat16``."""
    from rag.models import resolve_dtype

    return str(resolve_dtype("auto", "cpu")).removeprefix("torch.")
