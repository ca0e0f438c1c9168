"""What the machine-facing surfaces (the OpenAI-compatible ``/v1`` routes and the MCP tools)
share: API keys, the bounded line of requests waiting for the models, and the size of a
question.

Keys, sent as ``Authorization: Bearer KEY``, are checked on every ``/v1`` and
``/gradio_api/mcp`` request when there are any, and say who is asking: a person's own key
(``app.py user key NAME``, ``rag.people``) acts as that person, who sees exactly what they may
read; a service key (``RAG_API_KEYS``, comma-separated) acts as an admin, as before users.
Keys are required when the server listens beyond loopback or behind a login: without one those
surfaces answer 401 and say what to do. The browser app and Gradio's own API are not touched
by this (they act as the person signed in).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode

from rag import ADMIN, Caller, People

MAX_QUESTION_CHARS = 4000  # a question longer than this is a pasted document, not a question
MAX_BODY_BYTES = 4 * 1024 * 1024  # a /v1 request body (the whole conversation)
GUARDED = ("/v1", "/gradio_api/mcp")  # the paths the keys protect


class Busy(Exception):
    """The line of requests waiting for the models is full."""


class QuestionTooLong(ValueError):
    pass


def check_question(question: str) -> str:
    """``question`` stripped; ValueError if it is empty, QuestionTooLong past the limit."""
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionTooLong(
            f"the question is {len(question):,} characters long; at most "
            f"{MAX_QUESTION_CHARS:,} are accepted (ask about a passage, not with it)"
        )
    return question


class Gate:
    """At most ``limit`` requests in flight (waiting or running) across the /v1 routes and the
    MCP tools; one more is turned away at once (``Busy``) rather than queued without end. The
    engine itself runs model work one request at a time."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.inside = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.inside >= self.limit:
                raise Busy(
                    f"the server is busy: {self.inside} requests are waiting or running "
                    f"(at most {self.limit}); try again shortly"
                )
            self.inside += 1

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1

    @contextmanager
    def held(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()


def parse_keys(value: str | None) -> tuple[str, ...]:
    """``"k1,k2"`` -> the keys (blanks dropped).

    >>> parse_keys(" abc , ,def "), parse_keys(None)
    (('abc', 'def'), ())
    """
    return tuple(key.strip() for key in (value or "").split(",") if key.strip())


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a --host value) listens on this machine only.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class Keys:
    """Who an API key belongs to: ``service`` keys (RAG_API_KEYS) act as an admin; a person's
    own keys (the users store, ``people``) act as that person. ``required``: a request without
    a valid key is refused even when no key exists yet (the server is reachable from other
    machines, or has a login)."""

    def __init__(
        self, service: tuple[str, ...] = (), people: People | None = None, required: bool = False
    ) -> None:
        self.service = service
        self.people = people
        self.required = required

    def caller(self, headers: dict[bytes, bytes]) -> Caller | None:
        """The person whose key these headers carry (None: no valid key)."""
        scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        given = key.encode()
        if any(hmac.compare_digest(given, k.encode()) for k in self.service):
            return ADMIN
        return self.people.by_key(key) if self.people is not None else None

    @property
    def enforced(self) -> bool:
        """Whether a key is needed: some exist, or one is required."""
        return self.required or bool(self.service) or bool(self.people)

    def refusal(self, headers: dict[bytes, bytes]) -> str | None:
        """Why a request with these headers is refused (None: it may pass)."""
        if not self.enforced:
            return None
        if self.caller(headers) is not None:
            return None
        if not self.service and not self.people:
            return (
                "this server needs API keys for /v1 and MCP (it listens beyond this machine "
                "or has a login): its operator must create one (app.py user key NAME) or set "
                "RAG_API_KEYS"
            )
        scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return "an API key is required: send Authorization: Bearer YOUR_KEY"
        return "the API key is not valid"

    def acting(self, headers: dict[bytes, bytes]) -> Caller:
        """Whom a request that passed ``refusal`` acts for: its key's person, else (no keys
        anywhere, a server on this machine alone) an admin, as before users."""
        return self.caller(headers) or ADMIN


class KeyCheck:
    """ASGI middleware: the bearer key on the guarded paths (an OpenAI-shaped 401 otherwise),
    and the MCP server limited to ``tools`` (Gradio's own ``?tools=`` selection, forced, so the
    app's other API endpoints are neither listed nor callable as tools)."""

    def __init__(self, app, keys: Keys, tools: tuple[str, ...] = ()) -> None:
        self.app = app
        self.keys = keys
        self.tools = tools

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(GUARDED):
            await self.app(scope, receive, send)
            return
        refusal = self.keys.refusal(dict(scope.get("headers") or []))
        if refusal is not None:
            await send_error(send, 401, refusal, "invalid_api_key")
            return
        if path.startswith("/gradio_api/mcp") and self.tools:
            query = [
                (k, v)
                for k, v in parse_qsl(scope.get("query_string", b"").decode())
                if k != "tools"
            ]
            query.append(("tools", ",".join(self.tools)))
            scope = {**scope, "query_string": urlencode(query).encode()}
        await self.app(scope, receive, send)


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None):
    """An OpenAI-shaped error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


KINDS = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error"}
KINDS |= {413: "invalid_request_error", 429: "rate_limit_error", 500: "server_error"}


async def send_error(send, status: int, message: str, code: str | None = None) -> None:
    body = json.dumps(error_body(message, KINDS.get(status, "server_error"), code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
