"""Finding a checkpoint, telling its family from its config, choosing device and dtype.

A model id is a local folder or a Hugging Face hub id. Hub ids are read from the local hub
cache; the hub itself is contacted only when it answers at once, so an offline machine gets
one clear ``ModelNotFoundError`` instead of a minute of retries. The family comes from the
checkpoint's ``config.json`` (``architectures`` first, then ``model_type``), or, for a PEFT
adapter such as vidore/colpali-v1.3, from its base model's config: never from the name.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from rag.errors import ConfigError, ModelNotFoundError, UnsupportedModelError

logger = logging.getLogger(__name__)

RETRIEVER_ARCHITECTURES = {
    "ColPali": "colpali",
    "ColQwen2": "colqwen2",
    "ColQwen2_5": "colqwen2_5",
    "ColIdefics3": "colidefics3",
}
RETRIEVER_MODEL_TYPES = {
    "paligemma": "colpali",
    "qwen2_vl": "colqwen2",
    "qwen2_5_vl": "colqwen2_5",
    "idefics3": "colidefics3",
}
GENERATOR_MODEL_TYPES = {
    "qwen2_vl": "qwen_vl",
    "qwen2_5_vl": "qwen_vl",
    "idefics3": "chat_template",
    "smolvlm": "chat_template",
    "paligemma": "paligemma",
}


@dataclass(frozen=True)
class ModelSource:
    """A checkpoint located on this machine (or reachable), with its config read."""

    model_id: str  # what to pass to from_pretrained
    config: dict  # the (base) model's config.json
    local_files_only: bool
    adapter_base: str | None = None  # set when model_id is a PEFT adapter


def locate(model_id: str, setting: str) -> ModelSource:
    """Find ``model_id`` and read its config; ``setting`` (e.g. RAG_RETRIEVER) names the knob
    the user turns to change it, for the error message."""
    offline = _hub_offline()
    adapter = _read_json(model_id, "adapter_config.json", offline)
    if adapter is not None:
        base = adapter.get("base_model_name_or_path")
        if not base:
            raise UnsupportedModelError(f"{model_id}: adapter_config.json names no base model")
        config = _read_json(base, "config.json", offline)
        if config is None:
            raise ModelNotFoundError(_missing_message(base, setting, f"the base of {model_id}"))
        return ModelSource(model_id, config, offline or Path(model_id).is_dir(), base)
    config = _read_json(model_id, "config.json", offline)
    if config is None:
        raise ModelNotFoundError(_missing_message(model_id, setting))
    return ModelSource(model_id, config, offline or Path(model_id).is_dir())


def retriever_family(source: ModelSource) -> str:
    """One of colpali, colqwen2, colqwen2_5, colidefics3."""
    for architecture in source.config.get("architectures") or []:
        if architecture in RETRIEVER_ARCHITECTURES:
            return RETRIEVER_ARCHITECTURES[architecture]
    family = RETRIEVER_MODEL_TYPES.get(source.config.get("model_type", ""))
    if family is None:
        raise UnsupportedModelError(
            f"{source.model_id}: model type {source.config.get('model_type')!r} is not a supported "
            f"retriever (ColPali, ColQwen2, ColQwen2.5, ColIdefics3)"
        )
    return family


def generator_family(source: ModelSource) -> str:
    """One of qwen_vl, chat_template, paligemma."""
    family = GENERATOR_MODEL_TYPES.get(source.config.get("model_type", ""))
    if family is None:
        raise UnsupportedModelError(
            f"{source.model_id}: model type {source.config.get('model_type')!r} is not a supported "
            f"answerer (Qwen2-VL, Qwen2.5-VL, Idefics3/SmolVLM, PaliGemma)"
        )
    return family


def resolve_device(setting: str = "auto") -> str:
    """``auto`` picks cuda > mps > cpu."""
    import torch

    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(setting: str, device: str):
    """``auto``: bf16 on CUDA and on a CPU with bf16 arithmetic (``cpu_has_bf16``), where it
    runs the models about twice as fast as fp32; fp32 elsewhere (MPS, older CPUs, which would
    emulate it). fp16 on CPU is refused: its matmul is ~3000x slower than bf16 there."""
    import torch

    if setting == "auto":
        bf16 = device.startswith("cuda") or (device == "cpu" and cpu_has_bf16())
        return torch.bfloat16 if bf16 else torch.float32
    if setting == "float16" and device == "cpu":
        raise ConfigError("RAG_DTYPE=float16 is unusably slow on CPU; use bfloat16 or float32")
    return getattr(torch, setting)


_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 (AVX512-BF16, AMX), Arm (FEAT_BF16)


@functools.cache
def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bf16 instructions, from the flags Linux lists in ``cpuinfo``
    (elsewhere: no, and fp32 stays the default)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return not _BF16_FLAGS.isdisjoint(value.split())
    return False


def _read_json(model_id: str, filename: str, offline: bool) -> dict | None:
    path = _find_file(model_id, filename, offline)
    return None if path is None else json.loads(Path(path).read_text())


def _find_file(model_id: str, filename: str, offline: bool) -> str | None:
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        candidate = folder / filename
        return str(candidate) if candidate.is_file() else None
    if _looks_like_path(model_id):
        return None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, filename)
    if isinstance(cached, str):
        return cached
    if offline or cached is not None:  # cached is _CACHED_NO_EXIST: known not to exist
        return None
    return _download(model_id, filename)


def _download(model_id: str, filename: str) -> str | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return hf_hub_download(model_id, filename)
    except EntryNotFoundError:
        return None
    except Exception as error:  # network, auth, unknown repo: all mean "not available"
        logger.info("hub download of %s/%s failed: %s", model_id, filename, error)
        return None


def _looks_like_path(model_id: str) -> bool:
    return model_id.startswith((".", "/", "~")) or model_id.count("/") > 1 or os.sep in model_id[:1]


def _hub_offline() -> bool:
    """Offline when HF_HUB_OFFLINE is set or the hub does not answer within 3 seconds."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or not _hub_reachable(constants.ENDPOINT)


@functools.cache
def _hub_reachable(endpoint: str) -> bool:
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
    except OSError:
        return False
    return True


def _missing_message(model_id: str, setting: str, role: str = "") -> str:
    what = f"{model_id!r}" + (f" ({role})" if role else "")
    return (
        f"model {what} is not available here: download it on a machine with network "
        f"(hf download {model_id}) and copy the Hugging Face cache, or set {setting} "
        f"to a local folder that holds it"
    )


def attention_options(implementation: str) -> dict[str, str]:
    """``from_pretrained`` keyword for RAG_ATTN_IMPLEMENTATION; flash-attention only when its
    package is installed."""
    if implementation == "auto":
        return {}
    if implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ConfigError(
            "RAG_ATTN_IMPLEMENTATION=flash_attention_2 needs the flash-attn package "
            "(pip install flash-attn, on a CUDA machine); use sdpa otherwise"
        )
    return {"attn_implementation": implementation}
