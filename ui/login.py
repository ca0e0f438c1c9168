"""Who may sign in to the web app, and whom each request acts for.

Three ways, chosen when the server starts (``Login.configure``):

- **Passwords**: the users store (``<data-dir>/users.json``, ``app.py user add``) and the old
  ``--auth user:pass,...`` (its users are plain users, kept in memory; deprecated). Gradio shows
  its login page and checks each login with ``Login.check`` (argon2, off the event loop); a
  name in the store is checked against the store only.
- **Single sign-on**: ``RAG_AUTH_HEADER`` names the header a proxy in front (oauth2-proxy, ...)
  sets to the signed-in user's name. It is believed only from an address in
  ``RAG_TRUSTED_PROXIES`` (addresses or networks); any other request has no user and gets 401.
  A name the store knows acts with its groups (and admin flag); any other is a plain user
  with no groups: the proxy decides who gets in, the store only who is in which group.
- **None** (no users, no ``--auth``, no header): everyone acts as an admin, as before users.

Every request then acts as its person (``Login.caller``): the store is read afresh (it is
reread only when the file changed), so a group joined or left applies at the next request; a
person removed from the store is refused even with a session still open.

``LoginThrottle`` slows guessing: from one address, after ``FREE_FAILURES`` failed logins within
``WINDOW_S``, each further attempt waits (1 s, doubling, at most ``MAX_WAIT_S``) before it is
checked, one at a time (others meanwhile get 429 with Retry-After); a success clears the count.
Each login is an audit event (``login``: ok, address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from starlette.middleware import Middleware
from starlette.requests import Request

from rag import ADMIN, Caller, ConfigError, People

logger = logging.getLogger(__name__)

Mode = Literal["off", "password", "header"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FREE_FAILURES = 5  # failed logins from one address before each next attempt waits
WINDOW_S = 15 * 60  # failures older than this are forgotten
MAX_WAIT_S = 30.0  # the longest an attempt waits
MAX_ADDRESSES = 10_000  # addresses remembered (the least recently failing forgotten first)
MAX_LOGIN_BODY = 64 * 1024  # a login form is two short fields
LOGIN_PATH = "/login"  # Gradio's login route (routes.py: /login and /login/, after any root path)
MAX_HEADER_NAME = 256
DEPRECATED = (
    "--auth (RAG_AUTH) is deprecated: its users are plain users with no groups, kept in memory; "
    "add people with `app.py user add NAME [--group G]` instead"
)


def _unrecorded(event: str, who: str, **details: object) -> None:
    """No audit log."""


class Login:
    """How people sign in (``mode``) and whom a request acts for. ``people``: the users store;
    ``legacy``: the ``--auth`` users (None: none); ``header``: the single sign-on header ("":
    none), believed from ``proxies`` only; ``record``: the audit log's."""

    def __init__(
        self,
        people: People,
        legacy: People | None = None,
        header: str = "",
        proxies: Iterable[Network] = (),
        record: Callable[..., None] = _unrecorded,
    ) -> None:
        self.people = people
        self.legacy = legacy
        self.header = header.strip()
        self.proxies = tuple(proxies)
        self.record = record
        self.mode: Mode = "header" if self.header else "password"
        if not self.header and not people and not legacy:
            self.mode = "off"
        self.throttle = Throttle()

    @classmethod
    def configure(
        cls,
        settings,
        people: People,
        pairs: list[tuple[str, str]] | None,
        record: Callable[..., None] = _unrecorded,
    ) -> Login:
        """From the settings (``auth_header``, ``trusted_proxies``), the users store and the
        ``--auth`` pairs; ConfigError in one line for a bad proxy address, or a header with
        ``--auth``."""
        if settings.auth_header and pairs:
            raise ConfigError(
                "RAG_AUTH_HEADER and --auth exclude each other: behind single sign-on the "
                "proxy signs people in"
            )
        legacy = People.legacy(pairs) if pairs else None
        proxies = parse_proxies(settings.trusted_proxies)
        return cls(people, legacy, settings.auth_header, proxies, record)

    @property
    def enabled(self) -> bool:
        """Whether people sign in (else everyone acts as an admin)."""
        return self.mode != "off"

    def describe(self) -> str:
        """One line for the server's log: how people sign in."""
        if self.mode == "header":
            proxies = ", ".join(map(str, self.proxies)) or "nowhere"
            return f"single sign-on: the {self.header} header, believed from {proxies}"
        if self.mode == "off":
            return "no login: everyone who reaches the app acts as an admin"
        stored, legacy = len(self.people), len(self.legacy) if self.legacy else 0
        return f"login with a password: {stored} people in the users store, {legacy} from --auth"

    def launch_options(self) -> dict:
        """Gradio's launch options for this way of signing in."""
        if self.mode == "header":
            return {"auth_dependency": self.header_user}
        if self.mode == "password":
            return {"auth": self.check}
        return {}

    def middleware(self) -> list[Middleware]:
        """The login route's throttle (passwords only)."""
        return [Middleware(LoginThrottle, login=self)] if self.mode == "password" else []

    # -- who a request is ---------------------------------------------------------------------

    def caller(self, name: str | None) -> Caller | None:
        """Whom a request of the signed-in ``name`` (Gradio's ``request.username``) acts for:
        an admin without a login; None (refused) for nobody, or a name no longer known."""
        if self.mode == "off":
            return self._open()
        if not name:
            return None
        known = self.people.get(name)
        if known is not None:
            return known
        if self.mode == "header":
            return Caller(name)
        return self.legacy.get(name) if self.legacy is not None else None

    def _open(self) -> Caller | None:
        """Without a login, everyone is an admin, until people are added to the store while
        the server runs: from then on nobody is (None: refused) until a restart turns the
        login on, so adding people never leaves the app open to all by mistake."""
        if self.people:
            logger.warning("people were added to the users store: restart to turn the login on")
            return None
        return ADMIN

    def header_user(self, request) -> str | None:
        """Gradio's ``auth_dependency``: the header's user name, from a trusted proxy only."""
        host = request.client.host if request.client else None
        if not self.trusted(host):
            return None
        name = request.headers.get(self.header, "").strip()
        return name if 0 < len(name) <= MAX_HEADER_NAME else None

    def requester(self, scope: dict) -> Caller | None:
        """Whom a raw request (an ASGI ``scope``) acts for, resolved as Gradio does: the
        header, or the session cookie of a password login (``app.tokens``)."""
        if self.mode == "off":
            return self._open()
        request = Request(scope)
        if self.mode == "header":
            return self.caller(self.header_user(request))
        app = scope.get("app")
        if app is None or not hasattr(app, "tokens"):
            return None
        cookies = request.cookies
        token = cookies.get(f"access-token-{app.cookie_id}") or cookies.get(
            f"access-token-unsecure-{app.cookie_id}"
        )
        return self.caller(app.tokens.get(token)) if token else None

    def trusted(self, host: str | None) -> bool:
        """Whether ``host`` is one of the trusted proxies."""
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def address(self, scope: dict) -> str:
        """The client's address: the peer's, or, from a trusted proxy, the last address of
        its X-Forwarded-For."""
        peer = (scope.get("client") or ("", 0))[0] or ""
        if self.trusted(peer):
            forwarded = Request(scope).headers.get("x-forwarded-for", "")
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            if hops:
                return hops[-1]
        return peer

    # -- passwords ----------------------------------------------------------------------------

    async def check(self, username: str, password: str) -> bool:
        """Gradio's ``auth``: whether the password is the user's (hashing runs in a thread,
        so the server keeps answering meanwhile)."""
        return await asyncio.to_thread(self.verify, username, password) is not None

    def verify(self, username: str, password: str) -> Caller | None:
        """The user if ``password`` is theirs: the store's for a name it knows, else the
        ``--auth`` users'."""
        if self.people.get(username) is not None or self.legacy is None:
            return self.people.verify(username, password)
        return self.legacy.verify(username, password)


def parse_proxies(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks; ConfigError naming a bad one.

    >>> [str(n) for n in parse_proxies("127.0.0.1, 10.0.0.0/8,::1")]
    ['127.0.0.1/32', '10.0.0.0/8', '::1/128']
    """
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"RAG_TRUSTED_PROXIES: {item!r} is not an address or a network (10.0.0.0/8)"
            ) from None
    return tuple(networks)


# -- slowing down guessing ---------------------------------------------------------------------


@dataclass
class Attempts:
    """One address's recent failed logins, and whether an attempt of theirs is being
    checked while throttled."""

    failures: deque[float] = field(default_factory=deque)
    busy: bool = False


class Throttle:
    """Failed logins per address (the ``MAX_ADDRESSES`` most recent addresses)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._addresses: OrderedDict[str, Attempts] = OrderedDict()

    def attempts(self, address: str) -> Attempts:
        found = self._addresses.setdefault(address, Attempts())
        now = self.clock()
        while found.failures and now - found.failures[0] > WINDOW_S:
            found.failures.popleft()
        return found

    def wait(self, address: str) -> float:
        """How long the next attempt from ``address`` must wait before it is checked.

        >>> t = Throttle(clock=lambda: 100.0)
        >>> for _ in range(5): t.failed("a")
        >>> t.wait("a"), t.wait("b")
        (1.0, 0.0)
        >>> for _ in range(10): t.failed("a")
        >>> t.wait("a")
        30.0
        """
        found = self.attempts(address)
        over = len(found.failures) - FREE_FAILURES
        if over < 0:
            return 0.0
        pause = min(MAX_WAIT_S, 2.0**over)
        return max(0.0, found.failures[-1] + pause - self.clock())

    def failed(self, address: str) -> None:
        self.attempts(address).failures.append(self.clock())
        self._addresses.move_to_end(address)
        while len(self._addresses) > MAX_ADDRESSES:
            self._addresses.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._addresses.pop(address, None)


class LoginThrottle:
    """ASGI middleware on Gradio's login route: slows repeated failures from one address
    (``Throttle``) and records each login in the audit log."""

    def __init__(self, app, login: Login) -> None:
        self.app = app
        self.login = login

    async def __call__(self, scope, receive, send) -> None:
        is_login = scope["type"] == "http" and scope.get("method") == "POST"
        if not is_login or not scope.get("path", "").rstrip("/").endswith(LOGIN_PATH):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, MAX_LOGIN_BODY)
        if body is None:
            await reply(send, 413, "the login form is too large")
            return
        address = self.login.address(scope)
        username = await form_field(scope, body, "username")
        throttle = self.login.throttle
        attempts = throttle.attempts(address)
        wait = throttle.wait(address)
        if wait > 0 and attempts.busy:  # one attempt at a time while slowed
            self.login.record("login", username, ok=False, address=address, throttled=True)
            retry = str(math.ceil(wait) or 1)
            await reply(send, 429, "too many failed logins: wait", [(b"retry-after", retry)])
            return
        attempts.busy = wait > 0
        try:
            await asyncio.sleep(wait)
            status = await self._forward(scope, replay(body, receive), send)
        finally:
            attempts.busy = False
        ok = status == 200
        if ok:
            throttle.succeeded(address)
        elif status == 400:  # Gradio's "Incorrect credentials."
            throttle.failed(address)
        self.login.record("login", username, ok=ok, address=address)

    async def _forward(self, scope, receive, send) -> int:
        """Pass the login on to Gradio; the status it answered."""
        answered = {"status": 0}

        async def noted(message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, noted)
        return answered["status"]


async def read_body(receive, limit: int) -> bytes | None:
    """The whole request body, or None past ``limit`` bytes."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            return None
    return body


def replay(body: bytes, then=None):
    """An ASGI ``receive`` that gives ``body`` once, then what ``then`` (the request's own
    ``receive``: its disconnect) gives, or a disconnect."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then() if then is not None else {"type": "http.disconnect"}

    return receive


async def form_field(scope: dict, body: bytes, name: str) -> str:
    """A field of a login form (urlencoded or multipart), "" if absent or unreadable."""
    try:
        form = await Request(scope, replay(body)).form()
    except Exception:  # a malformed form: Gradio answers it; the audit says ""
        return ""
    value = form.get(name)
    return value.strip()[:MAX_HEADER_NAME] if isinstance(value, str) else ""


async def reply(
    send, status: int, text: str, headers: list[tuple[bytes, str]] | None = None
) -> None:
    body = text.encode()
    extra = [(key, value.encode()) for key, value in headers or []]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
