"""Folders kept in sync with the index: what is new in them is added, what changed replaces its
older version, what moved keeps its document, what is gone is reported (or removed).

Identity is content (``rag.ingest.content_id``): a file whose bytes are already a document is
unchanged wherever it now lies (a rename or a move only updates the document's ``source``, its
tags and visibility kept); new bytes at a path that is a document's ``source`` replace that
document, which stays searchable until the new version commits (``rag.index.store``); other
new bytes are added. A run only decides from the index and the files, so a run cut short
(kill -9) and run again ends where an uninterrupted one would: each change it makes is one
atomic step of the store. Its own state is a stat cache (``rag.scan``), which saves hashing an
unchanged folder again and is never trusted for more than that. Following folders as they
change is ``rag.watch``'s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rag import ingest
from rag.access import parse_visibility
from rag.errors import DocumentNotFoundError
from rag.index.records import Document
from rag.library import IndexResult, owned_id, plural
from rag.scan import Scan, check_sources
from rag.tags import changed_tags, clean_tags

if TYPE_CHECKING:
    from rag.pipeline import Pipeline

logger = logging.getLogger(__name__)

Action = Literal["added", "replaced", "moved", "removed", "refused", "waiting", "missing"]


@dataclass(frozen=True)
class Change:
    """What a sync did with, or found about, one file: ``path`` (for ``removed`` and
    ``missing``, the document's former source), the document's ``name`` and ``doc_id``, and
    ``detail`` (why refused; where a moved document was; the pages added)."""

    action: Action
    path: str
    name: str = ""
    doc_id: str = ""
    detail: str = ""

    @property
    def message(self) -> str:
        """One line, starting with the path, as the CLI prints it."""
        ids = f"{self.name}, id {self.doc_id}"
        return {
            "added": f"{self.path}: added, {self.detail} (id {self.doc_id})",
            "replaced": f"{self.path}: replaced, {self.detail} (id {self.doc_id})",
            "moved": f"{self.path}: moved here from {self.detail} (id {self.doc_id})",
            "removed": f"{self.path}: removed, its file is gone ({ids})",
            "refused": f"{self.path}: refused: {self.detail}",
            "waiting": f"{self.path}: still changing, taken at the next sync",
            "missing": f"{self.path}: missing ({ids}; --prune removes it)",
        }[self.action]


@dataclass(frozen=True)
class SyncReport:
    """One sync's outcome. Counts are of files (``unchanged``: already a document, moved
    ones too), except ``removed``; ``missing``: documents whose file is gone and that were not
    pruned; ``changes``: a line's worth for each file added, replaced, moved, removed,
    refused, still changing, or missing, in the order they happened."""

    added: int = 0
    replaced: int = 0
    removed: int = 0
    unchanged: int = 0
    refused: int = 0
    waiting: int = 0
    ignored: int = 0  # files of other types (no line each)
    missing: tuple[Change, ...] = ()
    changes: tuple[Change, ...] = ()

    @property
    def messages(self) -> list[str]:
        return [change.message for change in self.changes]

    @property
    def summary(self) -> str:
        """``sync: 2 added, 1 replaced, 0 removed, 14 unchanged, 1 refused; 3 missing
        (--prune removes them)``, the waiting files at the end when there are some."""
        counts = (self.added, self.replaced, self.removed, self.unchanged, self.refused)
        words = ("added", "replaced", "removed", "unchanged", "refused")
        text = "sync: " + ", ".join(f"{n} {word}" for n, word in zip(counts, words, strict=True))
        if self.missing:
            text += f"; {len(self.missing)} missing (--prune removes them)"
        if self.waiting:
            text += f"; {self.waiting} still changing (taken at the next sync)"
        return text


def sync(
    pipeline: Pipeline,
    sources: Iterable[Path],
    *,
    tags: Iterable[str] = (),
    visibility: str = "everyone",
    prune: bool = False,
    settle_s: float | None = None,
    progress: Callable[[Change], None] | None = None,
) -> SyncReport:
    """Bring the index in line with the documents under ``sources`` (folders, recursively, as
    ``rag.ingest.sources`` finds them, or files), acting as ``pipeline.caller``. New files
    are added carrying ``tags``, readable as ``visibility`` says; a new version of a file
    keeps its document's tags (plus ``tags``), visibility and owner. Documents whose file is
    gone are removed with ``prune``, else reported missing. A file modified less than
    ``settle_s`` ago (default: Settings.sync_settle_s) is left for the next sync; one that
    cannot be read is refused, the rest go on. ``progress`` hears of each change as it
    happens. A source that does not exist or cannot be read, a bad tag or visibility: RagError,
    nothing changed."""
    settings = pipeline.settings
    roots = check_sources(sources)
    tags = clean_tags(tags)
    parse_visibility(visibility, pipeline.library.groups())
    settle = settings.sync_settle_s if settle_s is None else settle_s
    run = _Run(pipeline, progress)
    scan = Scan(settings.data_dir)
    for root in roots:
        scan.root(root, settle)
    documents = pipeline.documents()
    for root in _unmounted(roots, documents):  # an empty mount never prunes its documents
        scan.blind.append(root)
        detail = "empty, though documents came from it: is it mounted? none of them is removed"
        run.note(Change("refused", str(root), root.name, detail=detail))
    run.adopt(documents, scan)
    run.place(tags, visibility)
    run.leave(documents, scan, prune)
    report = replace(run.report(), ignored=scan.ignored)
    counts = {k: getattr(report, k) for k in ("added", "replaced", "removed", "unchanged")}
    pipeline.audit.record(
        "sync",
        pipeline.caller.name,
        sources=[str(root) for root in roots],
        **counts,
        refused=report.refused,
        missing=len(report.missing),
    )
    return report


@dataclass
class _Run:
    """One sync's decisions and changes, as ``pipeline.caller``."""

    pipeline: Pipeline
    progress: Callable[[Change], None] | None
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    seen: set[str] = field(default_factory=set)  # documents whose content was found
    sources: dict[str, Document] = field(default_factory=dict)  # by source, after moves
    new: list[list[str]] = field(default_factory=list)  # paths of each content to index

    def note(self, change: Change) -> None:
        self.changes.append(change)
        if self.progress is not None:
            self.progress(change)

    def adopt(self, documents: list[Document], scan: Scan) -> None:
        """Count the files whose content is a document already (the caller's own copy of
        another's private one, if so: ``rag.library``); a document whose file moved gets its
        new path as ``source``. The other contents are left for ``place``."""
        by_id = {d.doc_id: d for d in documents}
        self.sources = {d.source: d for d in documents if d.source}
        for path in scan.waiting:
            self.note(Change("waiting", str(path)))
        for path, reason in scan.refused.items():
            self.note(Change("refused", str(path), detail=reason))
        caller = self.pipeline.caller.name
        for content_id, paths in _by_content(scan.hashed).items():
            document = by_id.get(content_id) or by_id.get(owned_id(content_id, caller))
            if document is None:
                self.new.append(paths)
                continue
            self.unchanged += len(paths)
            self.seen.add(document.doc_id)
            old = document.source
            if old and old not in paths and self._gone(old, document.doc_id, scan):
                self._move(document, paths[0])

    @staticmethod
    def _gone(source: str, doc_id: str, scan: Scan) -> bool:
        """Whether a document's file is no longer at ``source`` (or holds other content)."""
        if source in scan.hashed:
            return scan.hashed[source] != doc_id
        if scan.covers(source):
            return not scan.undecided(source)
        return not os.path.lexists(source)  # synced from a folder this run does not see

    def _move(self, document: Document, path: str) -> None:
        def moved(current: Document) -> Document:
            name = current.name
            if name == ingest.display_name(Path(current.source).name):  # named after its file
                name = ingest.display_name(Path(path).name)
            return replace(current, source=path, name=name)

        try:
            changed = self.pipeline.index.update(document.doc_id, moved)
        except DocumentNotFoundError:  # deleted meanwhile
            return
        self.sources.pop(document.source, None)
        self.sources[path] = changed
        self.note(Change("moved", path, changed.name, changed.doc_id, detail=document.source))

    def place(self, tags: tuple[str, ...], visibility: str) -> None:
        """Index each content that is no document yet: as the new version of the document
        whose source holds it (one whose content no file holds any more), else as a new
        document. The same bytes at several paths make one document."""
        for paths in self.new:
            self.unchanged += len(paths) - 1
            older = [self.sources[p] for p in paths if p in self.sources]
            older = [d for d in older if d.doc_id not in self.seen]
            if older:
                self._replace(Path(older[0].source), older[0], tags)
            else:
                path = Path(paths[0])
                result = self.pipeline.add_file(
                    path, tags=tags, visibility=visibility, source=str(path)
                )
                self._result(result, path, "added")

    def _replace(self, path: Path, older: Document, tags: tuple[str, ...]) -> None:
        self.seen.add(older.doc_id)  # replaced; or, its new version refused, kept as it is
        result = self.pipeline.add_file(
            path,
            tags=changed_tags(older.tags, add=tags),
            visibility=older.visibility,
            source=str(path),
            replaces=older,
        )
        self._result(result, path, "replaced")

    def _result(self, result: IndexResult, path: Path, action: Action) -> None:
        if result.status == "indexed":
            pages = plural(result.pages, "page")
            self.note(Change(action, str(path), result.file, result.doc_id or "", pages))
        elif result.status == "skipped":  # another writer indexed it meanwhile
            self.unchanged += 1
        else:
            reason = (result.error or "").removeprefix(f"{result.file}: ")
            self.note(Change("refused", str(path), result.file, detail=reason))

    def leave(self, documents: list[Document], scan: Scan, prune: bool) -> None:
        """The documents synced from under the roots whose content no file holds any more
        (and whose file is not still changing or unreadable): removed with ``prune``, else
        reported missing."""
        for document in documents:
            source = document.source
            if not source or document.doc_id in self.seen or not scan.covers(source):
                continue
            if source not in scan.hashed and scan.undecided(source):
                continue
            if not prune:
                self.note(Change("missing", source, document.name, document.doc_id))
                continue
            try:
                self.pipeline.delete(document.doc_id)
            except DocumentNotFoundError:  # deleted meanwhile
                continue
            self.note(Change("removed", source, document.name, document.doc_id))

    def report(self) -> SyncReport:
        count = dict.fromkeys(("added", "replaced", "removed", "refused", "waiting"), 0)
        for change in self.changes:
            if change.action in count:
                count[change.action] += 1
        missing = tuple(c for c in self.changes if c.action == "missing")
        changes = tuple(self.changes)
        return SyncReport(**count, unchanged=self.unchanged, missing=missing, changes=changes)


def _unmounted(roots: list[Path], documents: list[Document]) -> list[Path]:
    """The folders among ``roots`` that hold nothing at all while documents were synced from
    under them: most likely a share that failed to mount, not a team that deleted everything."""
    empty = []
    for root in roots:
        try:
            if not root.is_dir() or any(root.iterdir()):
                continue
        except OSError:
            continue  # unreadable: the scan reports it
        if any(d.source and Path(d.source).is_relative_to(root) for d in documents):
            empty.append(root)
    return empty


def _by_content(hashed: dict[str, str]) -> dict[str, list[str]]:
    """Paths grouped by content id, each group and the groups in path order."""
    groups: dict[str, list[str]] = {}
    for path, content_id in hashed.items():
        groups.setdefault(content_id, []).append(path)
    return groups
