"""Page images as the server hands them out: files under unguessable names, served only to a
person who may read their document at the moment each request arrives.

Gradio serves every image a handler returns from its cache, at ``/gradio_api/file=PATH``, to
anyone signed in who has the URL. So the app never hands Gradio a page image directly: it
saves each (a page, its heatmap, a thumbnail, the page at full size) in a folder of its own as
``LABEL.TOKEN.png``, ``TOKEN`` a random 32-character secret (``secrets.token_urlsafe``), and
registers the token with the document it shows, the person it was made for and the collection
that holds it. Gradio copies the file into its cache under the same name, so the name travels
with every URL of it. ``PageGuard``, a middleware on Gradio's file routes, reads the name: a
registered token is served only to the same person, and only while they may still read the
document (asked of the engine, ``pipeline.acting_for(caller).find(doc_id)``, at every request);
any other name of that shape, a token made up or forgotten, is 404. So a URL is refused when
guessed, copied into another person's session, fetched without a login, or after its document
was deleted or made private.

Without a login (and in public mode) everyone is the same person: the unguessable name is then
what keeps a page to those it was shown to, and the check that its document is still there
what ends it.

The registry is bounded (``limit`` tokens, the least recently used forgotten first, with their
files); a forgotten token is 404, so a page left on screen for very long may need a redraw.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from rag import Caller, Pipeline, RagError

logger = logging.getLogger(__name__)

LIMIT = 10_000  # tokens kept: a busy day of page views; each is one PNG on disk
TOKEN_BYTES = 24  # token_urlsafe(24): 32 characters, 192 random bits
# A page file's name: a label (letters, digits, - and _), its token, .png.
PAGE_FILE = re.compile(r"^[\w-]*\.([A-Za-z0-9_-]{32})\.png$")
# Gradio's routes that serve a file by its path (routes.py: /file=..., and the older /file/...).
FILE_ROUTE = re.compile(r"/gradio_api/file[=/](.*)$")
NOT_FOUND = b"Not found"


@dataclass(frozen=True)
class Entry:
    """What a token shows: a page of ``doc_id`` in ``pipeline``'s collection, for ``user``."""

    doc_id: str
    user: str
    pipeline: Pipeline
    path: Path


class PageFiles:
    """The registry of page files, at most ``limit`` of them: ``LABEL.TOKEN.png`` in
    ``folder`` (default: a temporary folder of its own, removed when the process ends)."""

    def __init__(self, limit: int = LIMIT, folder: Path | None = None) -> None:
        self.limit = limit
        self.folder = folder or Path(tempfile.mkdtemp(prefix="rag-pages-"))
        if folder is None:  # its own: removed with it, or when the process ends
            weakref.finalize(self, shutil.rmtree, self.folder, True)
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._copies: dict[tuple[str, str], str] = {}  # (user, source file) -> its token
        self._lock = threading.Lock()
        self._gone: str | None = None

    def publish(
        self, picture: Image.Image | Path | str, doc_id: str, label: str, user: str, pipeline
    ) -> str:
        """The path of a file showing ``picture`` (an image drawn now, or a page's file) to
        ``user``, whose ``pipeline`` (acting for them) must be able to read ``doc_id`` now:
        else DocumentNotFoundError, and nothing is made. A page's file is published once per
        person (the same token while it is kept)."""
        pipeline.find(doc_id)  # raises unless the caller may read it now
        if isinstance(picture, Image.Image):
            return str(self._add(doc_id, user, pipeline, label, picture.save))
        source = str(picture)
        with self._lock:
            token = self._copies.get((user, source))
            if token in self._entries:
                self._entries.move_to_end(token)
                return str(self._entries[token].path)
        path = self._add(doc_id, user, pipeline, label, lambda target: _link(source, target))
        with self._lock:
            self._copies[(user, source)] = token_of(path.name) or ""
        return str(path)

    def placeholder(self) -> str:
        """A plain grey page, for a thumbnail whose document may no longer be shown (its
        place in the gallery is kept)."""
        if self._gone is None:
            path = self.folder / "removed.png"
            Image.new("RGB", (62, 88), "#d4d4d8").save(path)
            self._gone = str(path)
        return self._gone

    def allows(self, name: str, caller: Caller | None) -> bool | None:
        """Whether the file ``name`` may be served to ``caller`` (None: nobody signed in):
        None when ``name`` is not a page file's (not this registry's business), else True
        only for a kept token of this caller's whose document they may read now."""
        token = token_of(name)
        if token is None:
            return None
        with self._lock:
            entry = self._entries.get(token)
            if entry is not None:
                self._entries.move_to_end(token)
        if entry is None or caller is None or caller.name != entry.user:
            return False
        try:
            entry.pipeline.acting_for(caller).find(entry.doc_id)
        except RagError:
            return False
        except Exception:  # an index closed meanwhile (a public session ended): refuse
            logger.exception("a page file's document could not be checked; refused")
            return False
        return True

    def forget(self, pipeline) -> None:
        """Forget every token published through ``pipeline`` (a public session's collection,
        dropped)."""
        with self._lock:
            tokens = [t for t, entry in self._entries.items() if entry.pipeline is pipeline]
            for token in tokens:
                self._drop(token)

    def _add(self, doc_id: str, user: str, pipeline, label: str, write: Callable) -> Path:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        path = self.folder / f"{safe_label(label)}.{token}.png"
        write(path)
        with self._lock:
            self._entries[token] = Entry(doc_id, user, pipeline, path)
            while len(self._entries) > self.limit:
                self._drop(next(iter(self._entries)))
        return path

    def _drop(self, token: str) -> None:
        entry = self._entries.pop(token)
        entry.path.unlink(missing_ok=True)


def token_of(name: str) -> str | None:
    """The token in a page file's name, or None for any other name.

    >>> token_of("page-3." + "A" * 32 + ".png") == "A" * 32, token_of("image.png")
    (True, None)
    """
    match = PAGE_FILE.match(name)
    return match.group(1) if match else None


def safe_label(label: str) -> str:
    """``label`` as the first part of a file name: letters, digits, - and _ only.

    >>> safe_label("heatmap p.3")
    'heatmap-p-3'
    """
    return re.sub(r"[^\w-]+", "-", label).strip("-")[:40] or "page"


def _link(source: str, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no copy), or a copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class PageGuard:
    """ASGI middleware on Gradio's file routes: a page file (``LABEL.TOKEN.png``) is served
    only when ``files.allows`` it to the requester (``identify(scope)``: the person signed
    in, as Gradio resolves them; None: nobody), else 404; and never cached by the browser or
    a proxy. Every other file passes to Gradio untouched."""

    def __init__(self, app, files: PageFiles, identify: Callable[[dict], Caller | None]) -> None:
        self.app = app
        self.files = files
        self.identify = identify

    async def __call__(self, scope, receive, send) -> None:
        route = FILE_ROUTE.search(scope.get("path", "")) if scope["type"] == "http" else None
        name = page_file_name(route.group(1)) if route else None
        if name is None:
            await self.app(scope, receive, send)
            return
        if not self.files.allows(name, self.identify(scope)):
            await send({"type": "http.response.start", "status": 404, "headers": _plain()})
            await send({"type": "http.response.body", "body": NOT_FOUND})
            return

        async def uncached(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"cache-control"]
                message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
            await send(message)

        await self.app(scope, receive, uncached)


def page_file_name(path: str) -> str | None:
    """The page file's name that Gradio would serve for ``path`` (as written, after Gradio's
    own ``os.path.abspath``, or with links resolved), None if it is none: ``a.png/x/..``
    is ``a.png`` to Gradio, so it is to the guard.

    >>> name = "page-1." + "A" * 32 + ".png"
    >>> page_file_name(f"/tmp/gradio/h/{name}/x/..") == name, page_file_name("/tmp/a.png")
    (True, None)
    """
    candidates = [PurePosixPath(path).name, Path(os.path.abspath(path)).name]
    with contextlib.suppress(OSError, RuntimeError):
        candidates.append(Path(os.path.abspath(path)).resolve().name)
    return next((name for name in candidates if token_of(name) is not None), None)


def _plain() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(NOT_FOUND)).encode()),
        (b"cache-control", b"no-store"),
    ]
