"""Where page multi-vectors live: the ``Index`` interface and its backends."""

from rag.index.base import Document, Hit, Index
from rag.index.local import LocalIndex

__all__ = ["Document", "Hit", "Index", "LocalIndex"]
