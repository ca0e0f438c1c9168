"""Folders followed as they change: a first full sync (``rag.sync``), then another once the
folders have been left alone for a moment after changes (inotify, through ``watchdog``), and a
full rescan every so often for what events miss (a network share, a folder mounted later).

``watch`` does it in the calling thread until told to stop (the CLI's ``sync --watch``);
``Syncer`` does it in a background thread for the web app's ``Settings.sync`` folders, and says
how the last sync went (``status``). The stat cache makes each sync after the first cost a
``stat`` per file, and an error in one run is logged and reported while the watching goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from rag.scan import check_sources
from rag.sync import Change, SyncReport, sync

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver, ObservedWatch

    from rag.pipeline import Pipeline

logger = logging.getLogger(__name__)

TICK_S = 0.2  # how often the loop looks at the clock, the events and ``stop``
# Events that may change what a folder holds; opening or reading a file (as hashing does)
# is none, or each sync would wake the next.
CHANGES = frozenset({"created", "modified", "deleted", "moved", "closed", "attrib"})


def watch(
    pipeline: Pipeline,
    sources: Iterable[Path],
    *,
    stop: threading.Event,
    on_report: Callable[[SyncReport], None],
    on_error: Callable[[Exception], None] | None = None,
    on_start: Callable[[], None] | None = None,
    tags: Iterable[str] = (),
    visibility: str = "everyone",
    prune: bool = False,
    settle_s: float | None = None,
    rescan_s: float | None = None,
    progress: Callable[[Change], None] | None = None,
) -> None:
    """Sync ``sources`` now, then again whenever they changed and no event came for
    ``settle_s`` (default Settings.sync_settle_s), and at least every ``rescan_s`` (default
    Settings.sync_rescan_s), until ``stop`` is set (a sync under way finishes first). Each
    run's report goes to ``on_report``; a run that raises is logged with its traceback and
    given to ``on_error``, and the watching goes on. ``on_start`` hears each run begin; the
    other options are ``sync``'s. A source that does not exist or cannot be read at the
    start: RagError, nothing watched."""
    roots = check_sources(sources)
    settings = pipeline.settings
    settle = settings.sync_settle_s if settle_s is None else settle_s
    rescan = settings.sync_rescan_s if rescan_s is None else rescan_s
    options = {"tags": tuple(tags), "visibility": visibility, "prune": prune}
    events = Events(roots, settings.data_dir)
    observer = Observer()
    observer.start()
    try:
        next_rescan = 0.0  # the first sync: at once
        while not stop.is_set():
            now = time.monotonic()
            events.look_at_roots()  # no event says that a root was moved away
            if now >= next_rescan or events.settled(settle, now):
                events.follow(observer)
                events.clear()  # an event from here on calls for another run
                if on_start is not None:
                    on_start()
                try:
                    report = sync(pipeline, roots, settle_s=settle, progress=progress, **options)
                except Exception as error:
                    logger.exception("sync of %s failed", ", ".join(map(str, roots)))
                    if on_error is not None:
                        on_error(error)
                else:
                    if report.waiting:  # files still being written: look again once settled
                        events.touch()
                    on_report(report)
                events.drop_gone(observer)
                next_rescan = time.monotonic() + rescan
            stop.wait(TICK_S)
    finally:
        observer.stop()
        observer.join()


class Events(FileSystemEventHandler):
    """The time of the last change under the roots that a sync has not yet looked at (none:
    None). Hidden entries and the data dir are no change, as ``rag.scan`` skips them."""

    def __init__(self, roots: list[Path], data_dir: Path) -> None:
        self.roots = roots
        self.skip = Path(data_dir).resolve()
        self.last: float | None = None
        self.watched: dict[Path, ObservedWatch] = {}
        self.there = tuple(root.exists() for root in roots)
        self._lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGES:
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(self._counts(os.fsdecode(path)) for path in paths if path):
            self.touch()

    def _counts(self, path: str) -> bool:
        target = Path(path)
        if target.is_relative_to(self.skip):
            return False
        for root in self.roots:
            if target == root:
                return True
            if target.is_relative_to(root):
                return not any(p.startswith(".") for p in target.relative_to(root).parts)
        return False

    def touch(self) -> None:
        with self._lock:
            self.last = time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self.last = None

    def settled(self, settle_s: float, now: float) -> bool:
        """Whether something changed and nothing has for ``settle_s``."""
        with self._lock:
            return self.last is not None and now - self.last >= settle_s

    def follow(self, observer: BaseObserver) -> None:
        """Watch the roots there and not watched yet (a folder: all of it; a file: its
        folder). One that cannot be watched (the system's inotify limit) is left to the
        rescans, and tried again at the next run."""
        for root in self.roots:
            if root in self.watched or not root.exists():
                continue
            folder, recursive = (root, True) if root.is_dir() else (root.parent, False)
            try:
                self.watched[root] = observer.schedule(self, str(folder), recursive=recursive)
            except OSError as error:
                logger.warning("cannot watch %s (%s): rescanned periodically only", root, error)

    def drop_gone(self, observer: BaseObserver) -> None:
        """Stop watching the roots that are gone (their watch died with them)."""
        for root, handle in list(self.watched.items()):
            if not root.exists():
                with contextlib.suppress(KeyError, OSError):  # already stopped by itself
                    observer.unschedule(handle)
                del self.watched[root]

    def look_at_roots(self) -> None:
        """A root gone (moved away: no event tells) or back is a change: a stat per root."""
        there = tuple(root.exists() for root in self.roots)
        if there != self.there:
            self.there = there
            self.touch()


def sync_sources(text: str) -> list[Path]:
    """Settings.sync's folders: separated by the path separator (":" on Linux), blanks
    ignored.

    >>> sync_sources(f"/srv/docs{os.pathsep} {os.pathsep}/srv/more")
    [PosixPath('/srv/docs'), PosixPath('/srv/more')]
    """
    return [Path(part.strip()) for part in text.split(os.pathsep) if part.strip()]


@dataclass(frozen=True)
class SyncStatus:
    """How the background sync goes: the last report's ``summary``, when it ``finished``
    (local time), whether a sync is ``running``, and the last run's ``error`` (until a run
    succeeds)."""

    summary: str = ""
    finished: datetime | None = None
    running: bool = False
    error: str = ""

    @property
    def line(self) -> str:
        """``Last sync 14:02: 2 added, 0 replaced, ...`` for the documents panel; "" before
        the first sync has begun."""
        when = self.finished.strftime("%H:%M") if self.finished else ""
        if self.error:
            text = f"Last sync {when} failed: {self.error}"
        elif self.summary:
            text = f"Last sync {when}: {self.summary.removeprefix('sync: ')}"
        else:
            return "Syncing…" if self.running else ""
        return f"{text} (syncing now)" if self.running else text


class Syncer:
    """Keeps ``sources`` (default: Settings.sync) in sync in a background thread, with
    Settings.sync_visibility, sync_prune, sync_settle_s and sync_rescan_s, acting as
    ``pipeline.caller``: ``start``, ``status``, ``stop``."""

    def __init__(self, pipeline: Pipeline, sources: Iterable[Path] | None = None) -> None:
        settings = pipeline.settings
        self.pipeline = pipeline
        self.sources = sync_sources(settings.sync) if sources is None else list(sources)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = SyncStatus()
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Start following the sources (once); False when there are none."""
        if not self.sources or self._thread is not None:
            return bool(self.sources)
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the sync under way, waiting at most ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> SyncStatus:
        with self._lock:
            return self._status

    def _run(self) -> None:
        settings = self.pipeline.settings
        try:
            watch(
                self.pipeline,
                self.sources,
                stop=self._stop,
                on_report=self._reported,
                on_error=self._failed,
                on_start=lambda: self._set(running=True),
                visibility=settings.sync_visibility,
                prune=settings.sync_prune,
            )
        except Exception as error:  # a bad source at the start: said in the status
            logger.exception("cannot sync %s", ", ".join(map(str, self.sources)))
            self._failed(error)

    def _reported(self, report: SyncReport) -> None:
        for change in report.changes:
            logger.info("%s", change.message)
        self._set(summary=report.summary, finished=datetime.now(), running=False, error="")

    def _failed(self, error: Exception) -> None:
        self._set(finished=datetime.now(), running=False, error=str(error) or repr(error))

    def _set(self, **changes: object) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)
