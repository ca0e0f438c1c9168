"""Finding checkpoints and telling their family from config (never from the name)."""

from __future__ import annotations

import json

import pytest

from rag.config import Settings
from rag.errors import ModelNotFoundError, UnsupportedModelError
from rag.models import cpu_has_bf16, generator_family, locate, resolve_dtype, retriever_family


def _checkpoint(folder, config: dict, filename: str = "config.json"):
    folder.mkdir(parents=True)
    (folder / filename).write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    ("config", "family"),
    [
        ({"architectures": ["ColPali"], "model_type": "paligemma"}, "colpali"),
        ({"architectures": ["ColQwen2"], "model_type": "qwen2_vl"}, "colqwen2"),
        ({"architectures": ["ColQwen2_5"], "model_type": "qwen2_5_vl"}, "colqwen2_5"),
        ({"architectures": ["ColIdefics3"], "model_type": "idefics3"}, "colidefics3"),
        ({"model_type": "qwen2_vl"}, "colqwen2"),  # no architectures: model_type decides
    ],
)
def test_retriever_family_comes_from_the_config(tmp_path, config, family):
    # The folder name says "colpali" on purpose: names must not decide.
    source = locate(str(_checkpoint(tmp_path / "colpali-lookalike", config)), "RAG_RETRIEVER")
    assert retriever_family(source) == family


def test_adapter_family_comes_from_its_base(tmp_path):
    base = _checkpoint(tmp_path / "base", {"architectures": ["ColQwen2"], "model_type": "qwen2_vl"})
    adapter = _checkpoint(
        tmp_path / "adapter", {"base_model_name_or_path": str(base)}, "adapter_config.json"
    )
    source = locate(str(adapter), "RAG_RETRIEVER")
    assert source.adapter_base == str(base)
    assert retriever_family(source) == "colqwen2"


def test_generator_families(tmp_path):
    for model_type, family in [
        ("qwen2_vl", "qwen_vl"),
        ("qwen2_5_vl", "qwen_vl"),
        ("idefics3", "chat_template"),
        ("smolvlm", "chat_template"),
        ("paligemma", "paligemma"),
    ]:
        folder = _checkpoint(tmp_path / model_type, {"model_type": model_type})
        assert generator_family(locate(str(folder), "RAG_GENERATOR")) == family


def test_unsupported_architectures_are_named(tmp_path):
    folder = _checkpoint(tmp_path / "bert", {"model_type": "bert"})
    with pytest.raises(UnsupportedModelError, match="'bert' is not a supported retriever"):
        retriever_family(locate(str(folder), "RAG_RETRIEVER"))
    with pytest.raises(UnsupportedModelError, match="not a supported answerer"):
        generator_family(locate(str(folder), "RAG_GENERATOR"))


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
