"""Finding a checkpoint and reading its config, choosing device and dtype.

A model id is a local folder or a Hugging Face hub id. Hub ids are read from the local hub
cache; the hub itself is contacted only when it answers at once, so an offline machine gets
one clear ``ModelNotFoundError`` instead of a minute of retries. The config is the
checkpoint's ``config.json``, or, for a PEFT adapter such as vidore/colpali-v1.3, its base
model's: ``rag.models.families`` tells the family from it, never from the name.
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


def has_file(source: ModelSource, filename: str, containing: str | None = None) -> bool:
    """Whether the checkpoint has ``filename`` (holding the text ``containing``, if given)."""
    path = _find_file(source.model_id, filename, source.local_files_only)
    if path is None and source.adapter_base:
        path = _find_file(source.adapter_base, filename, source.local_files_only)
    if path is None:
        return False
    return containing is None or containing in Path(path).read_text(errors="replace")


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


def attention_options(implementation: str, device: str = "cpu") -> dict[str, str]:
    """``from_pretrained`` keyword for RAG_ATTN_IMPLEMENTATION; flash-attention only when its
    package is installed, ``cpu_bf16`` (``rag.models.attention``) only on the CPU."""
    if implementation == "auto":
        return {}
    if implementation == "cpu_bf16":  # loaded as auto, then ``with_attention``
        if device != "cpu":
            raise ConfigError(
                f"RAG_ATTN_IMPLEMENTATION=cpu_bf16 runs on the CPU only (the device here is "
                f"{device}); use auto or sdpa"
            )
        return {}
    if implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ConfigError(
            "RAG_ATTN_IMPLEMENTATION=flash_attention_2 needs the flash-attn package "
            "(pip install flash-attn, on a CUDA machine); use sdpa otherwise"
        )
    return {"attn_implementation": implementation}


def pretrained_options(settings, source) -> dict:
    """``from_pretrained``'s keywords for a model of ``settings`` found at ``source``
    (``locate``): its dtype, device and attention; a setting the device cannot run is refused
    here, before any weight loads."""
    device = resolve_device(settings.device)
    return {
        "dtype": load_dtype(settings.dtype, settings.quantize, device),
        "device_map": device,
        "local_files_only": source.local_files_only,
        **attention_options(settings.attn_implementation, device),
    }


def configured(model, settings):
    """A model loaded with ``pretrained_options``, quantised under RAG_QUANTIZE and with
    RAG_ATTN_IMPLEMENTATION's kernel in place."""
    return with_attention(quantized(model, settings.quantize), settings.attn_implementation)


def with_attention(model, implementation: str):
    """``model`` as loaded with ``attention_options``, then under ``cpu_bf16`` with
    ``rag.models.attention``'s kernel wherever transformers chose sdpa."""
    if implementation == "cpu_bf16":
        from rag.models.attention import replace_sdpa

        replace_sdpa(model)
    return model


def load_dtype(settings_dtype: str, quantize: str, device: str):
    """The dtype to load weights in: float32 under RAG_QUANTIZE=int8 (its layers outside the
    linear ones compute in float32; refused off the CPU before any weight loads), else
    ``resolve_dtype``."""
    import torch

    if quantize == "none":
        return resolve_dtype(settings_dtype, device)
    if device != "cpu":
        raise ConfigError(
            f"RAG_QUANTIZE=int8 runs on the CPU only (the device here is {device}); "
            "set RAG_QUANTIZE=none"
        )
    return torch.float32


def quantized(model, quantize: str):
    """``model`` under RAG_QUANTIZE: ``int8`` stores every linear layer's weights in int8 and
    quantises its inputs on the fly (PyTorch's dynamic quantisation, CPU kernels only); the
    rest stays float32. ``none`` leaves the model as loaded."""
    if quantize == "none":
        return model
    import warnings

    import torch
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    layers = {name: default_dynamic_qconfig for name in _quantizable(model)}
    with warnings.catch_warnings():  # PyTorch marks its quantized tensors deprecated
        warnings.filterwarnings(
            "ignore", message=".*quantized tensor creation", category=UserWarning
        )
        return quantize_dynamic(model.float(), layers, dtype=torch.qint8)


def _quantizable(model) -> list[str]:
    """The plain linear layers that hold weights: not ColPali's unused head (left on the meta
    device), not a linear subclass whose owner reads its weight directly (the output projection
    of ``nn.MultiheadAttention``), and nothing inside a PEFT adapter's layers, which read their
    base layer's weight."""
    import torch

    adapters = [name for name, module in model.named_modules() if _is_adapter(module)]
    return [
        name
        for name, module in model.named_modules()
        if type(module) is torch.nn.Linear
        and module.weight.device.type != "meta"
        and not any(name.startswith(f"{adapter}.") for adapter in adapters)
    ]


def _is_adapter(module) -> bool:
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        return False
    return isinstance(module, BaseTunerLayer)
