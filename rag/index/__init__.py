"""Where page multi-vectors live: the ``Index`` interface and its backends."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rag.errors import ConfigError
from rag.index.base import Document, Hit, Index
from rag.index.local import LocalIndex

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["Document", "Hit", "Index", "LocalIndex", "open_index", "parse_index"]

QDRANT_PORT = 6333
INDEX_FORMS = "local, qdrant://HOST[:PORT], qdrants://HOST[:PORT], qdrant::memory: or qdrant:PATH"


def parse_index(spec: str) -> tuple[str, str | None]:
    """``--index`` / RAG_INDEX as (kind, location): ("local", None) or ("qdrant", LOCATION)
    where LOCATION is an http(s) URL, ":memory:" or a folder.

    >>> parse_index("qdrant://db:6333"), parse_index("qdrants://x.cloud.qdrant.io")
    (('qdrant', 'http://db:6333'), ('qdrant', 'https://x.cloud.qdrant.io:6333'))
    >>> parse_index("qdrant::memory:"), parse_index("qdrant:data/qdrant")
    (('qdrant', ':memory:'), ('qdrant', 'data/qdrant'))
    """
    spec = spec.strip()
    if spec == "local":
        return "local", None
    for scheme, http in (("qdrant://", "http://"), ("qdrants://", "https://")):
        if spec.startswith(scheme):
            host = spec[len(scheme) :].rstrip("/")
            if not host or "/" in host:
                raise ConfigError(f"RAG_INDEX: {spec!r} needs HOST[:PORT] (expected {INDEX_FORMS})")
            if ":" not in host.rsplit("]", 1)[-1]:  # no port (an IPv6 host is in [...])
                host = f"{host}:{QDRANT_PORT}"
            return "qdrant", http + host
    if spec.startswith("qdrant:") and spec != "qdrant:":
        return "qdrant", spec[len("qdrant:") :]  # ":memory:", an http(s) URL or a folder
    raise ConfigError(f"RAG_INDEX: unsupported value {spec!r} (expected {INDEX_FORMS})")


def open_index(settings: Settings, device: str = "cpu") -> Index:
    """The index ``settings.index`` names, over ``settings.data_dir / "index"``.

    With Qdrant, RAG_INDEX_MODE=pooled searches pooled vectors first and reranks the best
    ``settings.rerank`` pages on the originals; RAG_QDRANT_API_KEY and RAG_QDRANT_COLLECTION
    (default: one per retriever and data dir) come from the environment."""
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
        )
    if mode not in ("exact", "pooled"):
        raise ConfigError(f"RAG_INDEX_MODE={mode} is for the local index; Qdrant: exact or pooled")
    from rag.index.qdrant import QdrantIndex  # qdrant-client loads only when asked for

    return QdrantIndex(
        root,
        settings.retriever,
        location,
        api_key=os.environ.get("RAG_QDRANT_API_KEY") or None,
        collection=os.environ.get("RAG_QDRANT_COLLECTION") or None,
        pooled=settings.pool_factor if mode == "pooled" else 0,
        prefetch=settings.rerank,
    )
