"""The engine: documents (PDFs, office files, images) -> page images and words, ColPali-family
retrieval fused with BM25, VLM answers that cite pages, and heatmaps.

This is the engine's face: what the CLI (app.py) and the web UI (ui/) use, imported from
``rag`` itself (``tests/test_structure.py`` keeps them to it). Names load on first use, so
``import rag`` stays light: nothing here imports torch, a model or gradio until asked.

The stages, in the order a document flows through them: ``rag.ingest`` (file -> PDF, pages,
words), ``rag.models`` (retriever, answerer, families), ``rag.index`` (store, vectors, words,
hybrid search), ``rag.view`` (heatmaps, overlays, snippets, evidence boxes); ``rag.library`` and
``rag.asking`` compose them, and ``rag.pipeline`` puts the two sides together.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it
_FACE = {
    "Pipeline": "rag.pipeline",
    "Models": "rag.pipeline",
    "Answer": "rag.asking",
    "IndexResult": "rag.library",
    "Settings": "rag.config",
    "HYBRID_MODES": "rag.config",
    "RagError": "rag.errors",
    "ConfigError": "rag.errors",
    "DocumentNotFoundError": "rag.errors",
    "AccessError": "rag.errors",
    "Caller": "rag.access",
    "ADMIN": "rag.access",
    "Visibility": "rag.access",
    "parse_visibility": "rag.access",
    "may_read": "rag.access",
    "may_change": "rag.access",
    "People": "rag.people",
    "Syncer": "rag.watch",
    "sync_folders": "rag.sync",
    "watch_folders": "rag.watch",
    "Turn": "rag.chat",
    "from_messages": "rag.chat",
    "rewrite_request": "rag.chat",
    "pages_request": "rag.models.remote",
    "PagesRequest": "rag.models.remote",
    "PageRate": "rag.progress",
    "SUPPORTED": "rag.ingest.formats",
    "described": "rag.ingest.formats",
    "supported_list": "rag.ingest.formats",
    "types_legend": "rag.ingest.formats",
    "display_name": "rag.ingest.names",
    "ALPHA": "rag.view.overlay",
    "legend_colours": "rag.view.overlay",
    "Snippet": "rag.view.snippets",
    "WordChoices": "rag.view.choices",
    "QueryWord": "rag.view.heatmaps",
    "EvidenceBox": "rag.view.evidence",
    "citation_mark": "rag.citations",
    "CITATION_PATTERN": "rag.citations",
    "evaluate_questions": "rag.evaluation",
    "evaluate_vidore": "rag.evaluation",
    "EvalOptions": "rag.evaluation.run",
}
# A face name that is not its module's (``sync`` would shadow the module rag.sync).
_RENAMED = {
    "citation_mark": "mark",
    "CITATION_PATTERN": "PATTERN",
    "EvalOptions": "Options",
    "sync_folders": "sync",
    "watch_folders": "watch",
}

__all__ = [  # noqa: RUF022 (grouped by module, as _FACE)
    "Pipeline",
    "Models",
    "Answer",
    "IndexResult",
    "Settings",
    "HYBRID_MODES",
    "RagError",
    "ConfigError",
    "DocumentNotFoundError",
    "AccessError",
    "Caller",
    "ADMIN",
    "Visibility",
    "parse_visibility",
    "may_read",
    "may_change",
    "People",
    "Syncer",
    "sync_folders",
    "watch_folders",
    "Turn",
    "from_messages",
    "rewrite_request",
    "pages_request",
    "PagesRequest",
    "PageRate",
    "SUPPORTED",
    "described",
    "supported_list",
    "types_legend",
    "display_name",
    "ALPHA",
    "legend_colours",
    "Snippet",
    "WordChoices",
    "QueryWord",
    "EvidenceBox",
    "citation_mark",
    "CITATION_PATTERN",
    "evaluate_questions",
    "evaluate_vidore",
    "EvalOptions",
]


def __getattr__(name: str) -> Any:
    if name not in _FACE:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(_FACE[name]), _RENAMED.get(name, name))
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return __all__
