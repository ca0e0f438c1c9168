"""Finding checkpoints, devices and dtypes (families: tests/test_families.py)."""

from __future__ import annotations

import json

import pytest

from rag.config import Settings
from rag.errors import ModelNotFoundError
from rag.models.checkpoints import cpu_has_bf16, locate, resolve_dtype


def _checkpoint(folder, config: dict, filename: str = "config.json"):
    folder.mkdir(parents=True)
    (folder / filename).write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("model_id", ["vidore/colqwen2-v1.0", "/no/such/folder"])
def test_a_missing_model_says_what_to_do_at_once(model_id):
    with pytest.raises(ModelNotFoundError) as raised:
        locate(model_id, "RAG_RETRIEVER")
    message = str(raised.value)
    assert model_id in message and "RAG_RETRIEVER" in message and "\n" not in message


def test_a_missing_adapter_base_is_named(tmp_path):
    adapter = _checkpoint(
        tmp_path / "adapter",
        {"base_model_name_or_path": "vidore/nowhere-base"},
        "adapter_config.json",
    )
    with pytest.raises(ModelNotFoundError, match=r"vidore/nowhere-base.*the base of"):
        locate(str(adapter), "RAG_RETRIEVER")


def test_auto_dtype_is_bf16_on_cuda_and_on_cpus_with_bf16_and_fp16_on_cpu_is_refused():
    import torch

    assert resolve_dtype("auto", "cpu") == (torch.bfloat16 if cpu_has_bf16() else torch.float32)
    assert resolve_dtype("auto", "mps") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("float32", "cpu") == torch.float32
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="float16"):
        resolve_dtype("float16", "cpu")


@pytest.mark.parametrize(
    ("line", "has_bf16"),
    [
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", True),  # Zen 4, Cooper Lake
        ("flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile", True),  # Sapphire Rapids
        ("flags\t\t: fpu sse2 avx2 avx512f avx512bw", False),  # AVX-512 without bf16
        ("Features\t: fp asimd sve bf16 i8mm", True),  # Arm Neoverse V1/V2
        ("Features\t: fp asimd evtstrm crc32", False),
        ("model name\t: no flags line", False),
    ],
)
def test_bf16_support_is_read_from_the_cpu_flags(line, has_bf16, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\n{line}\n")
    assert cpu_has_bf16.__wrapped__(cpuinfo) is has_bf16
    assert cpu_has_bf16.__wrapped__(tmp_path / "missing") is False


def test_settings_from_environment(tmp_path):
    env = {"RAG_DATA_DIR": str(tmp_path), "RAG_TOP_K": "7", "RAG_DEVICE": "cpu"}
    settings = Settings.from_env(env, retriever="some/model")
    assert (settings.data_dir, settings.top_k, settings.device) == (tmp_path, 7, "cpu")
    assert settings.retriever == "some/model"
    with pytest.raises(ValueError, match="RAG_TOP_K must be an integer"):
        Settings.from_env({"RAG_TOP_K": "many"})
    with pytest.raises(ValueError, match="RAG_DEVICE"):
        Settings.from_env({"RAG_DEVICE": "tpu"})
