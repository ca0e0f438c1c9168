"""Model families: each recognised from its checkpoint's config (never its name), found by
listing rag/models/families/, and a checkpoint of the wrong kind refused in one line."""

from __future__ import annotations

import ast
import json
import logging

import pytest

from rag.errors import UnsupportedModelError
from rag.models.checkpoints import locate
from rag.models.families import answerer_family, answerers, retriever_family, retrievers
from tests.helpers import ROOT


def checkpoint(folder, config: dict, filename: str = "config.json", **files: str):
    folder.mkdir(parents=True)
    (folder / filename).write_text(json.dumps(config))
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text)
    return folder


def source(folder, setting: str = "RAG_RETRIEVER"):
    return locate(str(folder), setting)


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
    assert retriever_family(source(checkpoint(tmp_path / "colpali-like", config))).name == family


def test_adapter_family_comes_from_its_base(tmp_path):
    base = checkpoint(tmp_path / "base", {"architectures": ["ColQwen2"], "model_type": "qwen2_vl"})
    adapter = checkpoint(
        tmp_path / "adapter", {"base_model_name_or_path": str(base)}, "adapter_config.json"
    )
    found = source(adapter)
    assert found.adapter_base == str(base)
    assert retriever_family(found).name == "colqwen2"


def test_a_retrieval_adapter_over_a_plain_vlm_takes_its_base_type(tmp_path):
    config = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl"}
    base = checkpoint(tmp_path / "qwen2.5-vl", config)
    adapter = checkpoint(
        tmp_path / "adapter", {"base_model_name_or_path": str(base)}, "adapter_config.json"
    )
    assert retriever_family(source(adapter)).name == "colqwen2_5"
    with pytest.raises(UnsupportedModelError, match="is not a retriever"):
        retriever_family(source(base))  # the plain VLM alone is an answerer


@pytest.mark.parametrize(
    ("model_type", "family"),
    [
        ("qwen2_vl", "qwen_vl"),
        ("qwen2_5_vl", "qwen_vl"),
        ("idefics3", "idefics3"),
        ("smolvlm", "idefics3"),
        ("paligemma", "paligemma"),
    ],
)
def test_answerer_families(tmp_path, model_type, family):
    folder = checkpoint(tmp_path / model_type, {"model_type": model_type})
    assert answerer_family(source(folder, "RAG_GENERATOR")).name == family


def test_a_retriever_given_as_answerer_and_the_other_way_round_are_refused(tmp_path):
    colqwen = checkpoint(
        tmp_path / "colqwen", {"architectures": ["ColQwen2"], "model_type": "qwen2_vl"}
    )
    with pytest.raises(UnsupportedModelError) as raised:
        answerer_family(source(colqwen, "RAG_GENERATOR"))
    message = str(raised.value)
    assert "is a retriever (ColQwen2), not an answerer: set RAG_RETRIEVER" in message
    assert "\n" not in message
    qwen = checkpoint(
        tmp_path / "qwen",
        {"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl"},
    )
    with pytest.raises(UnsupportedModelError, match="is not a retriever this app supports"):
        retriever_family(source(qwen))


def test_a_text_only_model_is_refused_naming_what_was_found(tmp_path):
    llm = checkpoint(
        tmp_path / "llm", {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}
    )
    with pytest.raises(UnsupportedModelError) as raised:
        answerer_family(source(llm, "RAG_GENERATOR"))
    message = str(raised.value)
    assert "model type 'qwen2' (Qwen2ForCausalLM) is not an answerer" in message
    assert "set RAG_GENERATOR to one, e.g." in message
    with pytest.raises(UnsupportedModelError, match=r"'qwen2' .* is not a retriever"):
        retriever_family(source(llm))


def test_an_unknown_multimodal_checkpoint_with_a_chat_template_is_tried_generically(
    tmp_path, caplog
):
    config = {"architectures": ["NewVLForConditionalGeneration"], "model_type": "new_vl"}
    config["vision_config"] = {"hidden_size": 8}
    folder = checkpoint(
        tmp_path / "new-vl",
        config,
        chat_template__jinja="{{ messages }}",
        preprocessor_config__json="{}",
    )
    with caplog.at_level(logging.WARNING, logger="rag.models.families"):
        family = answerer_family(source(folder, "RAG_GENERATOR"))
    assert family.name == "generic"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "rag.models.families"]
    assert "'new_vl'" in line and "generic chat-template path" in line
    (folder / "chat_template.jinja").unlink()  # no template: refused, not guessed
    with pytest.raises(UnsupportedModelError, match="not an answerer this app supports"):
        answerer_family(source(folder, "RAG_GENERATOR"))


def test_every_family_module_is_found_and_names_its_checkpoints():
    names = [f.name for f in retrievers()] + [f.name for f in answerers()]
    assert len(names) == len(set(names))
    assert {"colpali", "colqwen2", "colqwen2_5", "colidefics3"} <= {f.name for f in retrievers()}
    for family in [*retrievers(), *answerers()]:
        assert family.label and family.examples and (family.architectures or family.model_types)


def test_no_module_outside_the_families_branches_on_a_family():
    """Family names and architectures appear in rag/ only in rag/models/families/."""
    names = {f.name for f in [*retrievers(), *answerers()]}
    labels = {a for f in [*retrievers(), *answerers()] for a in f.architectures}
    offenders = []
    for path in (ROOT / "rag").rglob("*.py"):
        if path.parent.name == "families":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names | labels:
                offenders.append(f"{path.relative_to(ROOT)}: {node.value!r}")
    assert offenders == []
