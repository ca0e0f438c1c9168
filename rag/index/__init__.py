"""Where page multi-vectors live: the ``Index`` interface and its backends."""

from __future__ import annotations

from rag.config import Settings, parse_index
from rag.errors import ConfigError
from rag.index.base import Index
from rag.index.hybrid import HybridSearch, hybrid_search
from rag.index.local import LocalIndex
from rag.index.records import Document, Hit

__all__ = [
    "Document",
    "Hit",
    "HybridSearch",
    "Index",
    "LocalIndex",
    "hybrid_search",
    "open_index",
    "parse_index",
    "warm_kernels",
]


def open_index(settings: Settings, device: str = "cpu") -> Index:
    """The index ``settings.index`` names, over ``settings.data_dir / "index"``.

    With Qdrant, RAG_INDEX_MODE=pooled searches pooled vectors first and reranks the best
    ``settings.rerank`` pages on the originals, and auto is exact (Qdrant scans or uses its own
    indexes); ``settings.qdrant_collection`` (default: one per retriever and data dir) names
    the collection."""
    kind, location = parse_index(settings.index)
    root = settings.data_dir / "index"
    mode = settings.index_mode
    if kind == "local":
        return LocalIndex(
            root,
            settings.retriever,
            device=device,
            dtype=settings.index_dtype,
            mode=mode,
            pool_factor=settings.pool_factor,
            rerank=settings.rerank,
            prefilter=settings.binary_prefilter,
            auto_binary_pages=settings.auto_binary_pages,
        )
    if mode == "binary":
        raise ConfigError(
            "RAG_INDEX_MODE=binary is for the local index; Qdrant: auto, exact or pooled"
        )
    from rag.index.qdrant import QdrantIndex  # qdrant-client loads only when asked for

    return QdrantIndex(
        root,
        settings.retriever,
        location,
        api_key=settings.qdrant_api_key or None,
        collection=settings.qdrant_collection or None,
        pooled=settings.pool_factor if mode == "pooled" else 0,
        prefetch=settings.rerank,
    )


def warm_kernels(settings: Settings) -> None:
    """Compile, once per process, what every index of ``settings``' kind shares (binary mode's
    popcount kernel), before any index is opened: a server whose collections open later."""
    if settings.index_mode == "binary":
        from rag.index.binary import warmup

        warmup()
