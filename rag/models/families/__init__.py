"""Model families: one module per family, found here by listing this package.

Each module defines ``RETRIEVER`` (a ``RetrieverFamily``) or ``ANSWERER`` (an
``AnswererFamily``); adding a family is one new module (and its tiny model in the test kit).
A checkpoint's family is read from its config: ``architectures`` first, then ``model_type``
(a PEFT adapter's through its base), never from its name. A retriever given as the answerer, or
the other way round, or a text-only model, is refused in one line naming what was found and
what to set instead.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from types import ModuleType

from rag.config import DEFAULT_GENERATOR, DEFAULT_RETRIEVER
from rag.errors import UnsupportedModelError
from rag.models.checkpoints import ModelSource, has_file
from rag.models.families.base import AnswererFamily, Family, RetrieverFamily
from rag.models.families.generic import FALLBACK

logger = logging.getLogger(__name__)

__all__ = ["answerer_family", "answerers", "named", "retriever_family", "retrievers"]


@functools.cache
def _modules() -> tuple[ModuleType, ...]:
    names = sorted(info.name for info in pkgutil.iter_modules(__path__))
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)


def retrievers() -> list[RetrieverFamily]:
    return [module.RETRIEVER for module in _modules() if hasattr(module, "RETRIEVER")]


def answerers() -> list[AnswererFamily]:
    return [module.ANSWERER for module in _modules() if hasattr(module, "ANSWERER")]


def named(name: str) -> Family:
    """The family called ``name`` (e.g. "colqwen2"), for models built in memory."""
    for family in [*retrievers(), *answerers()]:
        if family.name == name:
            return family
    raise KeyError(f"no model family named {name!r}")


def retriever_family(source: ModelSource) -> RetrieverFamily:
    """The retriever family of ``source``; UnsupportedModelError if it is none (an answerer,
    a text-only model, an unknown type)."""
    config = source.config
    family = _by_architecture(retrievers(), config)
    # A plain VLM is an answerer; an adapter trained for retrieval on one takes its base's type.
    if family is None and (source.adapter_base or not _by_architecture(answerers(), config)):
        family = _by_model_type(retrievers(), config)
    if family is None:
        labels = ", ".join(f.label for f in retrievers())
        raise UnsupportedModelError(
            f"{source.model_id}: {_found(config)} is not a retriever this app supports "
            f"({labels}); set RAG_RETRIEVER to one, e.g. {DEFAULT_RETRIEVER}"
        )
    return family


def answerer_family(source: ModelSource) -> AnswererFamily:
    """The answerer family of ``source``. A checkpoint of an unknown type with a chat template
    and an image processor gets the generic chat-template path, with one warning; a retriever
    or a text-only model is refused."""
    config = source.config
    retriever = _by_architecture(retrievers(), config)
    if retriever is None:
        family = _by_architecture(answerers(), config) or _by_model_type(answerers(), config)
        if family is not None:
            return family
    labels = ", ".join(f.label for f in answerers())
    if retriever is not None:
        raise UnsupportedModelError(
            f"{source.model_id} is a retriever ({retriever.label}), not an answerer: set "
            f"RAG_RETRIEVER to it, and RAG_GENERATOR to an answerer ({labels})"
        )
    if _takes_images(config) and _chat_template(source) and _image_processor(source):
        logger.warning(
            "%s: %s is not a known answerer family; trying the generic chat-template path",
            source.model_id,
            _found(config),
        )
        return FALLBACK
    raise UnsupportedModelError(
        f"{source.model_id}: {_found(config)} is not an answerer this app supports ({labels}): "
        f"set RAG_GENERATOR to one, e.g. {DEFAULT_GENERATOR}"
    )


def _by_architecture(families: list, config: dict) -> Family | None:
    """The family naming one of the config's architectures."""
    architectures = config.get("architectures") or []
    return next((f for f in families for a in architectures if a in f.architectures), None)


def _by_model_type(families: list, config: dict) -> Family | None:
    model_type = config.get("model_type", "")
    return next((f for f in families if model_type in f.model_types), None)


def _found(config: dict) -> str:
    architectures = ", ".join(config.get("architectures") or []) or "no architectures"
    return f"model type {config.get('model_type')!r} ({architectures})"


def _takes_images(config: dict) -> bool:
    """A multimodal config: a vision tower's config inside it."""
    return any(key in config for key in ("vision_config", "visual", "vision_tower"))


def _chat_template(source: ModelSource) -> bool:
    files = ("chat_template.jinja", "chat_template.json")
    configs = ("tokenizer_config.json", "processor_config.json")
    return any(has_file(source, name) for name in files) or any(
        has_file(source, name, containing="chat_template") for name in configs
    )


def _image_processor(source: ModelSource) -> bool:
    return has_file(source, "preprocessor_config.json") or has_file(
        source, "processor_config.json", containing="image_processor"
    )
