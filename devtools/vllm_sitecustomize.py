"""sitecustomize for a vLLM CPU environment (docs/testing.md, "A model server"): PyPI's
torchvision is a CUDA build whose meta registrations need two op schemas a CPU torch lacks;
define them before anything imports torchvision, as rag/models/torch_compat.py does."""

import contextlib
import importlib.util
from pathlib import Path

SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


def _define() -> None:
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return
    library = next(Path(spec.origin).parent.glob("_C*.so"), None)
    if library is not None:
        with contextlib.suppress(OSError, RuntimeError):
            torch.ops.load_library(str(library))
            return
    for name in ("nms", "qnms"):
        try:
            getattr(torch.ops.torchvision, name)
        except (AttributeError, RuntimeError):
            torch.library.define(f"torchvision::{name}", SCHEMA)


_define()
