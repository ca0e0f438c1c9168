"""Whose documents and which conversation a request sees.

Library mode: one persistent collection shared by everyone who can reach the app.
Public mode: every browser session gets its own private, temporary collection (the pipeline's
``collection``, with upload limits), dropped when the session ends (the tab is closed), when it
has been idle too long, or at the next start of the app.

A browser tab keeps a random key (in its ``sessionStorage``, which a reload keeps and another
tab does not share). When the tab goes away its session is kept a while under that key, so a
reload gets its conversation back (and, in public mode, its documents): ``resume``. Models are
loaded once and shared by all collections. Per-user data lives here, keyed by the session,
never in module globals.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

import gradio as gr

from rag import Answer, Pipeline, Turn

logger = logging.getLogger(__name__)

IDLE_SECONDS = 2 * 60 * 60  # a public collection untouched this long is removed
# How long a closed tab's session waits for its reload. In library mode only a conversation
# waits (cheap); in public mode the tab's documents do too, and closing a tab should delete
# them soon: a reload comes back within seconds.
KEPT_SECONDS = {False: IDLE_SECONDS, True: 15}


@dataclass(eq=False)  # a turn is itself: ``turn in session.turns`` compares identities
class ChatTurn:
    """One turn of a browser session's conversation: the retrieval (with its heatmaps), the
    answer as streamed so far, and where it searched."""

    answer: Answer
    scope: str  # as the user reads it: "all documents", "report.pdf, tag: finance"
    text: str = ""
    stopped: bool = False  # ended by the stop button (or the tab going away)
    done: bool = False  # written to its end, stopped or failed: stop no longer touches it


@dataclass
class Session:
    pipeline: Pipeline
    turns: list[ChatTurn] = field(default_factory=list)  # this browser session's chat
    view: tuple[int, int] = (0, 0)  # (turn, retrieved page) shown in the page view
    api_answer: Answer | None = None  # the last /ask of an API client, for /page
    seen: float = field(default_factory=time.monotonic)
    key: str = ""  # the tab's key (``resume``); empty for API clients
    asking: bool = False  # a question is being searched for or answered
    stop_asked: bool = False  # the stop button was pressed while asking
    # Scope values this session was offered -> the names shown, so that a document deleted
    # since is named, never shown by its id.
    names: dict[str, str] = field(default_factory=dict)

    def history(self) -> list[Turn]:
        """The conversation so far, as the answerer reads it."""
        return [Turn(t.answer.question, t.text) for t in self.turns]

    def leave(self) -> None:
        """The tab went away: an answer still being written stops (what it wrote stays)."""
        if self.asking:
            self.stop_asked = True
        for turn in self.turns:
            if not turn.done:
                turn.stopped = True


class Collections:
    def __init__(self, pipeline: Pipeline, public: bool) -> None:
        self.pipeline = pipeline
        self.public = public
        if public:  # whatever is there was left by a previous run
            pipeline.drop_collections()
        self._sessions: dict[str, Session] = {}
        self._kept: dict[str, tuple[float, Session]] = {}  # tab key -> (until, session)
        self._lock = threading.Lock()

    def session(self, request: gr.Request) -> Session:
        with self._lock:
            self._sweep()
            session = self._live(request)
            session.seen = time.monotonic()
            return session

    def resume(self, request: gr.Request, key: str | None) -> Session:
        """The session of a tab that has just opened, with its key from ``sessionStorage``
        (empty for a new tab): after a reload, the session the tab had, which it takes over;
        else a session with a fresh key (``Session.key``, for the tab to keep)."""
        with self._lock:
            self._sweep()
            kept = self._take(key, request.session_hash) if key else None
            if kept is None:
                session = self._live(request)
                session.key = session.key or secrets.token_urlsafe(24)
                return session
            fresh = self._sessions.pop(request.session_hash or "anonymous", None)
            if fresh is not None and fresh is not kept and self.public:
                fresh.pipeline.drop()
            self._sessions[request.session_hash or "anonymous"] = kept
            kept.seen = time.monotonic()
            return kept

    def close(self, request: gr.Request) -> None:
        """The tab went away: its session waits a while for a reload (``KEPT_SECONDS``),
        then, in public mode, its documents are deleted."""
        with self._lock:
            session = self._sessions.pop(request.session_hash or "anonymous", None)
            if session is None:
                return
            session.leave()
            if not session.key:
                self._end(session)
                return
            wait = KEPT_SECONDS[self.public]
            self._kept[session.key] = (time.monotonic() + wait, session)
        if self.public:  # deleted in time even if no other request comes
            timer = threading.Timer(wait + 0.5, self._sweep_now)
            timer.daemon = True
            timer.start()

    def _live(self, request: gr.Request) -> Session:
        key = request.session_hash or "anonymous"
        if key not in self._sessions:
            self._sessions[key] = Session(self._pipeline_for(key))
        return self._sessions[key]

    def _take(self, key: str, session_hash: str | None) -> Session | None:
        """The session kept under the tab key ``key``, or still live under another session
        hash (a reload noticed before its old page's close): taken from where it was."""
        _, kept = self._kept.pop(key, (0.0, None))
        if kept is not None:
            return kept
        for other, live in list(self._sessions.items()):
            if live.key == key and other != session_hash:
                return self._sessions.pop(other)
        return None

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

    def _sweep_now(self) -> None:
        with self._lock:
            self._sweep()

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if now - s.seen > IDLE_SECONDS]:
            self._end(self._sessions.pop(key))
        for key in [k for k, (until, _) in self._kept.items() if now >= until]:
            self._end(self._kept.pop(key)[1])

    def _end(self, session: Session) -> None:
        if self.public:
            session.pipeline.drop()
            logger.info("a public session ended; its collection was deleted")
