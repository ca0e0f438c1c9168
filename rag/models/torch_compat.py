"""Make torchvision importable next to a CPU-only torch build.

PyPI's torchvision 0.28 wheel is a CUDA build. Next to the CPU torch wheel its C++ op
library cannot load, and its meta registrations then reference ``torchvision::nms`` /
``torchvision::qnms`` ops that were never defined, so ``import torchvision`` fails (and,
through transformers, surfaces as unrelated "Could not import module ..." errors).
colpali-engine, qwen-vl-utils and the Qwen2-VL processors all import torchvision, but none
of them calls its C++ ops, so defining the two schemas is enough. With a matching torch
build the library loads and nothing is patched.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


@functools.cache
def ensure_torchvision() -> None:
    """Idempotently make ``import torchvision`` work; call before importing model libraries."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return
    library = next(Path(spec.origin).parent.glob("_C*.so"), None)
    if library is not None:
        try:
            torch.ops.load_library(str(library))
            return
        except (OSError, RuntimeError) as error:
            logger.debug("torchvision C++ ops unavailable (%s); defining schemas only", error)
    for name in ("nms", "qnms"):
        if not _op_exists(name):
            torch.library.define(f"torchvision::{name}", _SCHEMA)


def _op_exists(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True
