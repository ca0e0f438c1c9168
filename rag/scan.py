"""What the synced folders hold (``rag.sync``): their document files, found by
``rag.ingest.sources``'s rules, each with its content id, which a stat cache under
``<data-dir>/sync/`` keeps for the files whose size and mtime have not changed, so that an
unchanged folder of thousands of files is not read again. The cache only ever saves hashing:
losing it, or finding it stale, costs reading the files again, never a wrong id.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rag import ingest
from rag.errors import RagError
from rag.index.durable import atomic_write
from rag.ingest.formats import suffix
from rag.ingest.sources import looks_like_pdf

logger = logging.getLogger(__name__)

CACHE_FORMAT, CACHE_VERSION = "rag-sync-cache", 1
# A file changed this recently may change again within the same mtime tick without its size
# or mtime telling: its content id is not cached (git's "racy clean" problem).
RACY_S = 2.0
# A file dated further ahead than this was copied with a future date, not being written now.
FUTURE_S = 60.0


def check_sources(sources: Iterable[Path]) -> list[Path]:
    """``sources`` as absolute paths (links resolved; one inside another left out: it is
    synced with it), or RagError naming the first one that does not exist or cannot be
    read."""
    roots = []
    for source in sources:
        try:
            root = Path(source).resolve(strict=True)
            if root.is_dir():
                os.scandir(root).close()
            else:
                root.open("rb").close()
        except FileNotFoundError:
            raise RagError(
                f"cannot sync {source}: no such file or folder (nothing was changed)"
            ) from None
        except OSError as error:
            reason = (error.strerror or str(error)).lower()
            raise RagError(f"cannot sync {source}: {reason} (nothing was changed)") from None
        roots.append(root)
    if not roots:
        raise RagError("name a folder or file to sync")
    unique = sorted(set(roots))
    return [r for r in unique if not any(r != o and r.is_relative_to(o) for o in unique)]


@dataclass
class _Found:
    """A document file the scan met: its status, and its content id unless still changing."""

    status: os.stat_result
    content_id: str | None = None


class Scan:
    """The document files under some roots (``rag.ingest.sources``'s rules: hidden entries and
    links to folders are skipped; the data dir too), each hashed unless its stat cache entry
    still holds. What it could not read is in ``refused``; ``waiting``: the files still
    changing; ``blind``: folders it could not list (their documents are left alone)."""

    def __init__(self, data_dir: Path) -> None:
        self.cache_dir = Path(data_dir) / "sync"
        self.skip = Path(data_dir).resolve()  # its page images are no documents to sync
        self.files: dict[Path, _Found] = {}
        self.refused: dict[Path, str] = {}
        self.blind: list[Path] = []
        self.roots: list[Path] = []
        self.ignored = 0  # files of other types: counted, never a line each

    @functools.cached_property
    def hashed(self) -> dict[str, str]:
        """Content id by path, in path order, of the files it could read (once every root is
        scanned)."""
        return {str(p): f.content_id for p, f in sorted(self.files.items()) if f.content_id}

    @property
    def waiting(self) -> list[Path]:
        return sorted(path for path, found in self.files.items() if not found.content_id)

    def undecided(self, path: str) -> bool:
        """Whether ``path`` may well still hold its document: still changing, unreadable, or
        in a folder that could not be listed."""
        target = Path(path)
        blind = any(target.is_relative_to(folder) for folder in self.blind)
        return blind or target in self.refused or target in self.files

    def covers(self, path: str) -> bool:
        return any(Path(path).is_relative_to(root) for root in self.roots)

    def root(self, root: Path, settle_s: float) -> None:
        """Find and hash the document files under ``root``; its cache is saved before any
        document is indexed, so that a run cut short keeps the hashing done."""
        self.roots.append(root)
        cache = StatCache(self.cache_dir, root)
        for path, status in self._walk(root):
            if path != root and not self._is_document(path, status, cache):
                self.ignored += 1  # a file named on its own is always tried
                continue
            age = time.time() - status.st_mtime_ns / 1e9
            self.files[path] = found = _Found(status)
            if -FUTURE_S < age < settle_s:
                continue  # being written (or copied) right now
            found.content_id = cache.content_id(path, status) or self._hash(path, status, cache)
        cache.save()

    def _hash(self, path: Path, status: os.stat_result, cache: StatCache) -> str | None:
        try:
            content_id = ingest.content_id([path])
            after = path.stat()
        except FileNotFoundError:  # removed meanwhile: a change under way
            return None
        except OSError as error:
            self.refused[path] = f"cannot be opened ({error.strerror or error})"
            del self.files[path]
            return None
        if _key(after) != _key(status):
            return None  # written to while it was read
        cache.remember(path, status, content_id)
        return content_id

    def _is_document(self, path: Path, status: os.stat_result, cache: StatCache) -> bool:
        if suffix(path) in ingest.SUPPORTED:
            return True
        known = cache.lookup(path, status)
        if known is not None:
            return known != ""
        is_pdf = looks_like_pdf(path)
        cache.remember(path, status, None if is_pdf else "")
        return is_pdf

    def _walk(self, root: Path) -> Iterable[tuple[Path, os.stat_result]]:
        """Regular files under ``root`` (itself, if a file) in name order, with their stat."""
        if not root.is_dir():
            yield root, root.stat()
            return
        folders = [root]
        while folders:
            folder = folders.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name, reverse=True)
            except OSError as error:
                self.blind.append(folder)
                self.refused[folder] = f"folder cannot be read ({error.strerror or error})"
                continue
            for entry in reversed(entries):
                path = Path(entry.path)
                if entry.name.startswith(".") or path == self.skip:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(path)
                    continue
                try:
                    status = entry.stat()  # follows a link to a file
                except OSError as error:  # a link to nothing, or a loop of links
                    self.refused[path] = f"cannot be opened ({error.strerror or error})"
                    continue
                if stat.S_ISREG(status.st_mode):
                    yield path, status


class StatCache:
    """Content ids by path for the files under ``root``, trusted while a file's size and
    mtime are unchanged (``""``: not a document; None: not hashed yet), kept in
    ``<folder>/<hash of root>.json``. Only what a run saw is kept; losing the file costs
    hashing again, never a wrong result."""

    def __init__(self, folder: Path, root: Path) -> None:
        name = hashlib.sha256(str(root).encode()).hexdigest()[:16]
        self.path = folder / f"{name}.json"
        self.root = str(root)
        self.old = self._load()
        self.new: dict[str, list] = {}

    def _load(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        header = (data.get("format"), data.get("version"), data.get("root"))
        if header != (CACHE_FORMAT, CACHE_VERSION, self.root):
            return {}
        return data.get("files", {})

    def lookup(self, path: Path, status: os.stat_result) -> str | None:
        entry = self.old.get(str(path))
        if entry is None or entry[:2] != list(_key(status)):
            return None
        self.new[str(path)] = entry
        return entry[2]

    def content_id(self, path: Path, status: os.stat_result) -> str | None:
        return self.lookup(path, status) or None

    def remember(self, path: Path, status: os.stat_result, content_id: str | None) -> None:
        if time.time() - status.st_mtime_ns / 1e9 >= RACY_S:
            self.new[str(path)] = [*_key(status), content_id]

    def save(self) -> None:
        if self.new == self.old:
            return
        body = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "root": self.root}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps({**body, "files": self.new}))
        except OSError as error:  # only a cache: the next run hashes again
            logger.warning("cannot save the sync cache %s: %s", self.path, error)
        self.old = dict(self.new)


def _key(status: os.stat_result) -> tuple[int, int]:
    return (status.st_size, status.st_mtime_ns)
