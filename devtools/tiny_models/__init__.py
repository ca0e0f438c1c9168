"""Offline, tiny, random-weight checkpoints of every model family the app supports.

Each builder writes a folder with ``save_pretrained`` (model + processor) that loads back with
the same ``from_pretrained`` calls the app uses for the real checkpoints. Weights are seeded,
so a build is reproducible. ``python -m devtools.tiny_models OUT_DIR`` builds them all.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# family -> "module:function"; every builder takes the output root and returns its folder.
BUILDERS: dict[str, str] = {
    "colpali": "devtools.tiny_models.gemma:build_colpali",
    "colpali_lora": "devtools.tiny_models.gemma:build_colpali_lora",
    "paligemma": "devtools.tiny_models.gemma:build_paligemma",
    "colqwen2": "devtools.tiny_models.qwen:build_colqwen2",
    "colqwen2_5": "devtools.tiny_models.qwen:build_colqwen2_5",
    "qwen2_vl": "devtools.tiny_models.qwen:build_qwen2_vl",
    "qwen2_5_vl": "devtools.tiny_models.qwen:build_qwen2_5_vl",
    "colidefics3": "devtools.tiny_models.idefics:build_colidefics3",
    "idefics3": "devtools.tiny_models.idefics:build_idefics3",
    "colqwen3": "devtools.tiny_models.qwen3:build_colqwen3",
    "qwen3_vl": "devtools.tiny_models.qwen3:build_qwen3_vl",
    "qwen3_vl_moe": "devtools.tiny_models.qwen3:build_qwen3_vl_moe",
    "paligemma2": "devtools.tiny_models.gemma:build_paligemma2",
    "smolvlm2": "devtools.tiny_models.idefics:build_smolvlm2",
    "colgemma3": "devtools.tiny_models.gemma3:build_colgemma3",
    "gemma3": "devtools.tiny_models.gemma3:build_gemma3",
    "colqwen3_5": "devtools.tiny_models.qwen3:build_colqwen3_5",
    "qwen3_5": "devtools.tiny_models.qwen3:build_qwen3_5",
    "colmodernvbert": "devtools.tiny_models.modernvbert:build_colmodernvbert",
    "colqwen2_5_omni": "devtools.tiny_models.omni:build_colqwen2_5_omni",
    "xlm_roberta_reranker": "devtools.tiny_models.rerankers:build_xlm_roberta_reranker",
    "monoqwen2_vl": "devtools.tiny_models.rerankers:build_monoqwen2_vl",
}
RETRIEVERS = (
    "colpali",
    "colpali_lora",
    "colqwen2",
    "colqwen2_5",
    "colidefics3",
    "colqwen3",
    "colgemma3",
    "colqwen3_5",
    "colmodernvbert",
    "colqwen2_5_omni",
)
GENERATORS = (
    "qwen2_vl",
    "qwen2_5_vl",
    "idefics3",
    "paligemma",
    "qwen3_vl",
    "qwen3_vl_moe",
    "paligemma2",
    "smolvlm2",
    "gemma3",
    "qwen3_5",
)
RERANKERS = ("xlm_roberta_reranker", "monoqwen2_vl")  # a cross-encoder; an adapter over qwen2_vl


def build(family: str, out_dir: str | Path) -> Path:
    """Build one family's tiny checkpoint under ``out_dir/<family>`` (reused if present)."""
    from rag.models.torch_compat import ensure_torchvision

    ensure_torchvision()
    module_name, function_name = BUILDERS[family].split(":")
    builder = getattr(importlib.import_module(module_name), function_name)
    return builder(Path(out_dir))


def build_all(out_dir: str | Path) -> dict[str, Path]:
    """Build every family; returns family -> folder."""
    return {family: build(family, out_dir) for family in BUILDERS}
