"""Whose documents a request sees.

Library mode: one persistent collection shared by everyone who can reach the app.
Public mode: every browser session gets its own private, temporary collection (the pipeline's
``collection``, with upload limits), dropped when the session ends (the tab is closed), when it
has been idle too long, or at the next start of the app.
Models are loaded once and shared by all collections. Per-user data lives here, keyed by the
session, never in module globals.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

import gradio as gr

from rag import Answer, Pipeline, Turn

logger = logging.getLogger(__name__)

IDLE_SECONDS = 2 * 60 * 60  # a public collection untouched this long is removed


@dataclass
class ChatTurn:
    """One turn of a browser session's conversation: the retrieval (with its heatmaps), the
    answer as streamed so far, and where it searched."""

    answer: Answer
    scope: str  # as the user reads it: "all documents", "report.pdf, tag: finance"
    text: str = ""
    stopped: bool = False


@dataclass
class Session:
    pipeline: Pipeline
    turns: list[ChatTurn] = field(default_factory=list)  # this browser session's chat
    view: tuple[int, int] = (0, 0)  # (turn, retrieved page) shown in the page view
    api_answer: Answer | None = None  # the last /ask of an API client, for /page
    seen: float = field(default_factory=time.monotonic)

    def history(self) -> list[Turn]:
        """The conversation so far, as the answerer reads it."""
        return [Turn(t.answer.question, t.text) for t in self.turns]


class Collections:
    def __init__(self, pipeline: Pipeline, public: bool) -> None:
        self.pipeline = pipeline
        self.public = public
        if public:  # whatever is there was left by a previous run
            pipeline.drop_collections()
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def session(self, request: gr.Request) -> Session:
        key = request.session_hash or "anonymous"
        with self._lock:
            self._sweep()
            if key not in self._sessions:
                self._sessions[key] = Session(self._pipeline_for(key))
            session = self._sessions[key]
            session.seen = time.monotonic()
            return session

    def close(self, request: gr.Request) -> None:
        """End a session: in public mode its documents are deleted."""
        with self._lock:
            self._drop(request.session_hash or "anonymous")

    def _pipeline_for(self, key: str) -> Pipeline:
        if not self.public:
            return self.pipeline
        settings = self.pipeline.settings
        # The session hash comes from the client: only its digest names a folder.
        folder = hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()[:32]
        return self.pipeline.collection(
            f"session-{folder}",
            max_documents=settings.public_max_documents,
            max_pages=settings.public_max_pages,
            max_file_mb=settings.public_max_file_mb,
        )

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if now - s.seen > IDLE_SECONDS]:
            self._drop(key)

    def _drop(self, key: str) -> None:
        session = self._sessions.pop(key, None)
        if session is not None and self.public:
            session.pipeline.drop()
            logger.info("public session %s ended; its collection was deleted", key[:8])
