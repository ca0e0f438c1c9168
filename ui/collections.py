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

Behind a login (``ui.login``) every request acts as the person signed in: their session's
pipeline is the library as they see it (``Pipeline.acting_for``), worked out afresh for each
request, so a group joined or left, or a document shared or made private, applies at once.
Sessions are keyed by the person as well as by the session hash, and a tab's key resumes only
its own person's session: a browser shared after a logout, or a session hash copied from
someone else, finds nothing of theirs. Page images go out only as ``ui.pagefiles`` files.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from PIL import Image

from rag import ADMIN, Answer, Caller, Pipeline, Turn
from ui.login import Login
from ui.pagefiles import PageFiles

logger = logging.getLogger(__name__)

IDLE_SECONDS = 2 * 60 * 60  # a public collection untouched this long is removed
# How long a closed tab's session waits for its reload. In library mode only a conversation
# waits (cheap); in public mode the tab's documents do too, and closing a tab should delete
# them soon: a reload comes back within seconds.
KEPT_SECONDS = {False: IDLE_SECONDS, True: 15}
SIGNED_OUT = "You are no longer signed in to this app (removed from its users?): sign in again."
RESTART = (
    "People were added to this app's users since it started: it answers nobody until it is "
    "restarted with its login on."
)


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
    pipeline: Pipeline  # the collection as this session's person sees it
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
    caller: Caller = ADMIN  # the person signed in (as of their latest request)
    files: PageFiles | None = None  # where page images go out (None: as they are, in tests)

    @property
    def user(self) -> str:
        return self.caller.name

    def publish(self, picture: Image.Image | Path | str, doc_id: str, label: str):
        """``picture`` (a page drawn now, or a page's file) as the file the browser is given:
        an unguessable name, served to this person only while they may read ``doc_id``
        (``ui.pagefiles``); DocumentNotFoundError if they may not now."""
        if self.files is None:  # a session made by hand (tests): as it is
            return picture
        return self.files.publish(picture, doc_id, label, self.user, self.pipeline)

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
    """The sessions of one app: ``pipeline`` (the library, or in ``public`` mode the maker of
    each session's own collection), ``login`` (None: nobody signs in) and ``files`` (the page
    files handed out)."""

    def __init__(
        self,
        pipeline: Pipeline,
        public: bool,
        login: Login | None = None,
        files: PageFiles | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.public = public
        self.login = login if login is not None and login.enabled else None
        self.files = files or PageFiles()
        if public:  # whatever is there was left by a previous run
            pipeline.drop_collections()
        self._sessions: dict[tuple[str, str], Session] = {}  # (person, session hash) -> ...
        self._kept: dict[str, tuple[float, Session]] = {}  # tab key -> (until, session)
        self._lock = threading.Lock()

    @property
    def signed_in(self) -> bool:
        """Whether people sign in (their documents have owners and readers)."""
        return self.login is not None

    def caller(self, request: gr.Request) -> Caller:
        """Whom ``request`` acts for: the person signed in (an admin without a login);
        gr.Error for a person no longer known (removed from the users store meanwhile)."""
        if self.login is None:
            return ADMIN
        found = self.login.caller(getattr(request, "username", None))
        if found is None:
            raise gr.Error(SIGNED_OUT if self.login.enabled else RESTART)
        return found

    def session(self, request: gr.Request) -> Session:
        caller = self.caller(request)
        with self._lock:
            self._sweep()
            session = self._live(request, caller)
            session.seen = time.monotonic()
            return session

    def resume(self, request: gr.Request, key: str | None) -> Session:
        """The session of a tab that has just opened, with its key from ``sessionStorage``
        (empty for a new tab): after a reload, the session the tab had, which it takes over;
        else a session with a fresh key (``Session.key``, for the tab to keep)."""
        caller = self.caller(request)
        with self._lock:
            self._sweep()
            kept = self._take(key, request, caller.name) if key else None
            if kept is None:
                session = self._live(request, caller)
                session.key = session.key or secrets.token_urlsafe(24)
                return session
            fresh = self._sessions.pop(self._key(request, caller.name), None)
            if fresh is not None and fresh is not kept and self.public:
                self._end(fresh)
            self._sessions[self._key(request, caller.name)] = kept
            self._act(kept, caller)
            kept.seen = time.monotonic()
            return kept

    def close(self, request: gr.Request) -> None:
        """The tab went away: its session waits a while for a reload (``KEPT_SECONDS``),
        then, in public mode, its documents are deleted."""
        user = (getattr(request, "username", None) or "") if self.login else ""
        with self._lock:
            session = self._sessions.pop(self._key(request, user), None)
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

    @staticmethod
    def _key(request: gr.Request, user: str) -> tuple[str, str]:
        return (user, request.session_hash or "anonymous")

    def _live(self, request: gr.Request, caller: Caller) -> Session:
        key = self._key(request, caller.name)
        if key not in self._sessions:
            pipeline = self._pipeline_for(request.session_hash or "anonymous")
            self._sessions[key] = Session(pipeline, caller=caller, files=self.files)
        session = self._sessions[key]
        self._act(session, caller)
        return session

    def _act(self, session: Session, caller: Caller) -> None:
        """The session acts for ``caller`` as they are now (their groups as the store has
        them at this request)."""
        session.caller = caller
        if self.login is not None:  # without a login the library is everyone's (an admin's)
            session.pipeline = self.pipeline.acting_for(caller)

    def _take(self, key: str, request: gr.Request, user: str) -> Session | None:
        """The session of ``user`` kept under the tab key ``key``, or still live under another
        session hash (a reload noticed before its old page's close): taken from where it
        was. Another person's session is never taken, whoever knows its key."""
        _, kept = self._kept.get(key, (0.0, None))
        if kept is not None:
            if kept.user != user:
                return None
            del self._kept[key]
            return kept
        here = self._key(request, user)
        for other, live in list(self._sessions.items()):
            if live.key == key and other != here and live.user == user:
                return self._sessions.pop(other)
        return None

    def _pipeline_for(self, key: str) -> Pipeline:
        if not self.public:
            return self.pipeline  # acting for the person: ``_act``
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
            self.files.forget(session.pipeline)
            session.pipeline.drop()
            logger.info("a public session ended; its collection was deleted")
