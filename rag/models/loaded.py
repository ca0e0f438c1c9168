"""The models one app serves every collection with: loaded once, on first use, and taking turns
on the device.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext

from rag.config import Settings
from rag.models.answerer import Answerer
from rag.models.remote import RemoteAnswerer, remote_model
from rag.models.rerankers import Reranker, load_reranker
from rag.models.retriever import Retriever


class Models:
    """The retriever, the answerer and the reranker (if any): loaded once, on first use, shared
    by every collection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._retriever: Retriever | None = None
        self._answerer: Answerer | RemoteAnswerer | None = None
        self._reranker: Reranker | None = None
        self._lock = threading.Lock()
        # Held while a model computes (a batch of pages, a query, an answer), so that uploads,
        # which render outside it, and questions take turns on the device. A Lock, not an
        # RLock: a streamed answer may resume, and release it, on another thread.
        self.busy = threading.Lock()

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever.load(self.settings)
            return self._retriever

    @property
    def answerer(self) -> Answerer | RemoteAnswerer:
        """The in-process answerer, or one on a model server (RAG_GENERATOR=openai:MODEL),
        which loads nothing."""
        with self._lock:
            if self._answerer is None:
                remote = remote_model(self.settings.generator) is not None
                kind = RemoteAnswerer if remote else Answerer
                self._answerer = kind.load(self.settings)
            return self._answerer

    @property
    def reranker(self) -> Reranker:
        """The second stage RAG_RERANKER names (``rag.models.rerankers``); ConfigError when it
        is off. It computes under ``busy``, as the others do."""
        with self._lock:
            if self._reranker is None:
                self._reranker = load_reranker(self.settings)
            return self._reranker

    def answering(self) -> AbstractContextManager:
        """What an answer holds while it is written: the device (``busy``) for the in-process
        answerer; nothing for one on a model server, whose own queue orders its requests."""
        return self.busy if getattr(self.answerer, "on_device", True) else nullcontext()
