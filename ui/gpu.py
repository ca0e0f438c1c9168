"""ZeroGPU support: ``@gpu`` is ``spaces.GPU`` on a Hugging Face Space, a no-op elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    import spaces
except ImportError:  # not on a Space
    spaces = None


def gpu(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a handler that runs a model; on ZeroGPU it is given a GPU for its duration."""
    return spaces.GPU(fn) if spaces is not None else fn
