"""The document store under every index backend: documents, their page images and the files a
backend keeps per document, staged, committed atomically, listed, deleted, recovered.

Layout under ``root`` (the app's ``<data-dir>/index``)::

    index.json                  the backend's header (format, version, retriever, ...)
    generation                  rewritten at every change of a record in place (tags)
    docs/<doc_id>/doc.json      the Document record (name, pages, added, tags, owner, ...)
    docs/<doc_id>/page-NNNN.png page images (the answerer and heatmaps read them)
    docs/<doc_id>/...           what the backend keeps per document (e.g. vectors.npy)
    .staging/<pid>-<random>/    documents being added; a dead process's leftovers are removed
    .lock                       held by the writer committing or deleting (``writer_lock``)

A document is written into a staging folder and committed by renaming it to ``docs/<doc_id>``;
deleting renames it out again. Each is one rename: after a crash at any instant a document is
whole or absent; a new version of a document replaces the old one at its own commit (the old
is hidden from then on, and removed). A record changed in place (its tags, owner, visibility)
is rewritten atomically and the
``generation`` file replaced, so that other processes reread the records that changed. Writers
in several processes take turns under the lock, and check under it that a document is new;
readers take no lock and pick up other processes' changes at their next ``refresh``. The
store is not thread-safe: its backend serialises calls with its own lock.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import asdict, replace
from pathlib import Path

from rag.errors import DocumentNotFoundError, IndexMismatchError
from rag.index.durable import (
    atomic_write,
    clear_staging,
    folder_version,
    fsync_dir,
    fsync_tree,
    staging_folder,
    trash_folder,
    writer_lock,
)
from rag.index.records import Document
from rag.tags import changed_tags
from rag.words import PageText, Word

HEADER = "index.json"
TEXT_FILE = "text.json"  # in each document's folder, beside its page images
GENERATION = "generation"

# Called as a document appears (it may raise FileNotFoundError: deleted meanwhile, skipped) and
# as one disappears, so that a backend keeps its own per-document state in step.
Loaded = Callable[[Document, Path], None]
Forgotten = Callable[[str], None]


class DocumentStore:
    def __init__(
        self,
        root: Path,
        loaded: Loaded | None = None,
        forgotten: Forgotten | None = None,
    ) -> None:
        self.root = Path(root)
        self.listen(loaded, forgotten)
        self._documents: dict[str, Document] = {}
        self._stamps: dict[str, tuple[int, int]] = {}  # doc.json as read: (inode, mtime)
        self._seen: tuple | None = None  # docs/ and generation as last read (_version)
        self._ids: frozenset[str] | None = None  # doc_ids(), until the documents change
        clear_staging(self.root)

    def listen(self, loaded: Loaded | None = None, forgotten: Forgotten | None = None) -> None:
        """Tell ``loaded``/``forgotten`` of every document appearing or disappearing from now
        on (a backend opening an index first checks and migrates its header, then listens)."""
        self._loaded = loaded or (lambda document, folder: None)
        self._forgotten = forgotten or (lambda doc_id: None)

    # -- header -----------------------------------------------------------------------------

    def header(self) -> dict | None:
        """The backend's header, None before the first document."""
        path = self.root / HEADER
        if not path.exists():
            return None
        return read_json(path)

    def write_header(self, header: dict) -> None:
        """Write (or replace) the header; writers call this holding ``lock()``."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / HEADER, json.dumps(header, indent=2))

    def create_header(self, header: dict) -> dict:
        """The header on disk, ``header`` if no process wrote one first (once, even with racing
        processes: each writes its own file and links it into place)."""
        path = self.root / HEADER
        self.root.mkdir(parents=True, exist_ok=True)
        while not path.exists():
            mine = self.root / f".{HEADER}.{os.getpid()}.tmp"
            atomic_write(mine, json.dumps(header, indent=2))
            try:
                os.link(mine, path)  # fails if another process created the header first
                fsync_dir(self.root)
            except FileExistsError:
                continue
            finally:
                mine.unlink()
        return read_json(path)

    def check_header(
        self, header: dict, format_: str, version: int, retriever: str, hint: str
    ) -> None:
        """Refuse another backend's or version's folder (``hint``: what to do instead), or
        another retriever's vectors."""
        if header.get("format") != format_ or header.get("version") != version:
            raise IndexMismatchError(
                f"{self.root}: index format {header.get('format')} v{header.get('version')} is "
                f"not {format_} v{version}: {hint}"
            )
        if header.get("retriever") != retriever:
            raise IndexMismatchError(
                f"{self.root} was built with retriever {header.get('retriever')!r}, not "
                f"{retriever!r}: set RAG_RETRIEVER={header.get('retriever')} or use another "
                "--data-dir"
            )

    # -- writing ----------------------------------------------------------------------------

    def staging(self) -> AbstractContextManager[Path]:
        """A scratch folder for a new document; removed on exit unless committed."""
        return staging_folder(self.root)

    def lock(self) -> AbstractContextManager[None]:
        return writer_lock(self.root)

    def commit(
        self,
        document: Document,
        staged: Path,
        prepare: Callable[[], None] | None = None,
        undo: Callable[[], None] | None = None,
        retired: Callable[[str], None] | None = None,
    ) -> bool:
        """Rename ``staged`` to ``docs/<doc_id>`` under the writer lock. False (nothing changed)
        if the document is already there. ``prepare`` runs under the lock once the document is
        known to be new (e.g. write the header, upsert vectors elsewhere); if it or the rename
        fails, ``undo`` runs, still under the lock, and the error propagates.

        A document that ``replaces`` another (a synced file's new version) hides the older one
        from its commit on; the older one is then removed (``retired(old_id)``: its data kept
        elsewhere). After a crash in between, only the new one is seen, and the next writer
        finishes the removal (``_finish_replacements``)."""
        atomic_write(staged / "doc.json", json.dumps(asdict(document), indent=2))
        fsync_tree(staged)
        target = self.folder(document.doc_id)
        with self.lock():
            self._finish_replacements(retired)
            if (target / "doc.json").exists():
                return False  # committed by another writer while this one encoded
            try:
                if prepare:
                    prepare()
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staged, target)  # the commit point
            except BaseException:
                if undo:
                    undo()
                raise
            fsync_dir(target.parent)
            self._documents[document.doc_id] = document
            self._ids = None
            self._stamps[document.doc_id] = _stamp(target / "doc.json")
            self._loaded(document, target)
            self._finish_replacements(retired)
        return True

    def change_tags(
        self, doc_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> Document:
        """Add and remove a document's tags (``rag.tags`` rules), as ``update`` does."""
        return self.update(doc_id, lambda d: replace(d, tags=changed_tags(d.tags, add, remove)))

    def update(self, doc_id: str, change: Callable[[Document], Document]) -> Document:
        """Rewrite a document's record as ``change`` makes it from the current one (its tags,
        owner, visibility or source). The record is read and rewritten under the writer lock,
        in one atomic replace: a change another process made meanwhile is never lost."""
        with self.lock():
            self.refresh()
            document = self._documents.get(doc_id)
            if document is None:
                raise DocumentNotFoundError(f"no document with id {doc_id}")
            changed = change(document)
            self._rewrite(changed)
        return changed

    def _rewrite(self, document: Document) -> None:
        """Replace a committed record in place (under the writer lock); other processes
        reread it at their next refresh (the ``generation`` file changes)."""
        record = self.folder(document.doc_id) / "doc.json"
        atomic_write(record, json.dumps(asdict(document), indent=2))
        atomic_write(self.root / GENERATION, uuid.uuid4().hex)
        self._documents[document.doc_id] = document
        self._stamps[document.doc_id] = _stamp(record)

    def _finish_replacements(self, retired: Callable[[str], None] | None = None) -> None:
        """Under the writer lock: remove the documents that committed ones replace (left by a
        crash, or just hidden by a commit), then clear the marks, so that the older content
        can be added again later."""
        self.refresh()
        for document in [d for d in self._documents.values() if d.replaces]:
            old = self.folder(document.replaces)
            if old.exists():
                trash = trash_folder(self.root)
                trash.parent.mkdir(parents=True, exist_ok=True)
                os.rename(old, trash)
                fsync_dir(self.docs_dir)
                shutil.rmtree(trash, ignore_errors=True)
            if retired:
                retired(document.replaces)
            self._rewrite(replace(document, replaces=""))

    def delete(self, doc_id: str, then: Callable[[], None] | None = None) -> Document:
        """Remove a document (one rename, then its files); ``then`` runs under the writer lock
        after the rename (e.g. delete its vectors elsewhere, before anyone can re-add it)."""
        with self.lock():
            self._finish_replacements()
            document = self._documents.get(doc_id)
            if document is None:
                raise DocumentNotFoundError(f"no document with id {doc_id}")
            trash = trash_folder(self.root)
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.folder(doc_id), trash)  # the commit: gone at once
            fsync_dir(self.docs_dir)
            self._forget(doc_id)
            shutil.rmtree(trash, ignore_errors=True)
            if then:
                then()
        return document

    def clear(self) -> None:
        """Remove every document at once (their vectors were lost, e.g. kept in memory by a
        process that is gone); the header stays."""
        with self.lock():
            if self.docs_dir.exists():
                trash = trash_folder(self.root)
                trash.parent.mkdir(parents=True, exist_ok=True)
                os.rename(self.docs_dir, trash)
                shutil.rmtree(trash, ignore_errors=True)
            self.refresh()

    def drop(self) -> None:
        """Delete the whole store (a public session's collection ends this way)."""
        for doc_id in list(self._documents):
            self._forget(doc_id)
        shutil.rmtree(self.root, ignore_errors=True)
        self._seen = None

    # -- reading ----------------------------------------------------------------------------

    @property
    def docs_dir(self) -> Path:
        return self.root / "docs"

    def folder(self, doc_id: str) -> Path:
        return self.docs_dir / doc_id

    def page_image(self, doc_id: str, page_number: int) -> Path:
        # one Path from one string: a search makes one per page it brings back (50 deep in a
        # hybrid search), and joining Paths piece by piece costs four times as much
        return page_path(self.root / "docs" / doc_id, page_number)

    def documents(self) -> list[Document]:
        """Every document, oldest first."""
        self.refresh()
        return sorted(self._documents.values(), key=lambda doc: (doc.added, doc.name))

    def doc_ids(self) -> frozenset[str]:
        """Every document's id: the same object until the documents change, so a caller can
        tell whether they have (by identity) at the cost of two stats."""
        self.refresh()
        if self._ids is None:
            self._ids = frozenset(self._documents)
        return self._ids

    def get(self, doc_id: str) -> Document | None:
        self.refresh()
        return self._documents.get(doc_id)

    def known(self, doc_id: str) -> Document | None:
        """The document as of the last refresh (no disk access: for a search's many hits)."""
        return self._documents.get(doc_id)

    def __len__(self) -> int:
        """Documents as of the last refresh."""
        return len(self._documents)

    def refresh(self) -> None:
        """Catch up with other processes' commits, deletes and tag changes (two stats when
        nothing changed)."""
        version = (folder_version(self.docs_dir), _stamp(self.root / GENERATION))
        if version == self._seen:
            return
        on_disk = set()
        if self.docs_dir.exists():
            on_disk = {p.name for p in self.docs_dir.iterdir() if (p / "doc.json").exists()}
        on_disk -= self._replaced(on_disk)
        for doc_id in set(self._documents) - on_disk:
            self._forget(doc_id)
        for doc_id in sorted(on_disk):
            record = self.folder(doc_id) / "doc.json"
            try:
                stamp = _stamp(record)
                if doc_id in self._documents:
                    if stamp != self._stamps.get(doc_id):  # rewritten in place: new tags
                        self._documents[doc_id] = Document(**read_json(record))
                else:
                    document = Document(**read_json(record))
                    self._loaded(document, self.folder(doc_id))
                    self._documents[doc_id] = document
                    self._ids = None
                self._stamps[doc_id] = stamp
            except FileNotFoundError:  # deleted by another process since the listing
                continue
        self._seen = version

    def _replaced(self, on_disk: set[str]) -> set[str]:
        """The documents in ``on_disk`` that a committed newer version replaces: hidden, as if
        already gone (their removal was cut short, or is under way)."""
        replaced = set()
        for doc_id in on_disk:
            known = self._documents.get(doc_id)
            if known is not None and _stamp(self.folder(doc_id) / "doc.json") == self._stamps.get(
                doc_id
            ):
                replaced.add(known.replaces)
                continue
            try:
                replaced.add(read_json(self.folder(doc_id) / "doc.json").get("replaces", ""))
            except FileNotFoundError:
                continue
        return replaced - {""}

    def staged_doc_ids(self) -> set[str]:
        """Documents that live processes are committing right now (their doc.json is written
        before the commit's other steps): what belongs to them elsewhere must stay."""
        doc_ids = set()
        for record in (self.root / ".staging").glob("*/doc.json"):
            try:
                doc_ids.add(json.loads(record.read_text())["doc_id"])
            except (OSError, ValueError, KeyError):
                continue  # being written or removed
        return doc_ids

    def _forget(self, doc_id: str) -> None:
        self._documents.pop(doc_id, None)
        self._ids = None
        self._stamps.pop(doc_id, None)
        self._forgotten(doc_id)


def page_path(folder: Path, page_number: int) -> Path:
    """Where a document's folder (staged or committed) keeps the image of page
    ``page_number``: the one place that knows the file name."""
    return Path(folder) / f"page-{page_number:04d}.png"


def save_texts(folder: Path, texts: Iterable[PageText]) -> None:
    """Write ``text.json`` into a (staged) document folder: committed with the document."""
    records = [
        {
            "page": page.page_number,
            "source": page.source,
            "words": [[w.text, *(round(v, 5) for v in w.box)] for w in page.words],
        }
        for page in texts
    ]
    (folder / TEXT_FILE).write_text(json.dumps({"pages": records}, ensure_ascii=False))


def load_texts(folder: Path) -> list[PageText]:
    """The pages' words saved by ``save_texts`` (none for a document indexed before text was
    kept, or whose file is unreadable)."""
    try:
        records = json.loads((folder / TEXT_FILE).read_text())["pages"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [
        PageText(
            int(r["page"]),
            tuple(Word(str(w[0]), tuple(float(v) for v in w[1:5])) for w in r["words"]),
            str(r.get("source", "layer")),
        )
        for r in records
    ]


def _stamp(path: Path) -> tuple[int, int]:
    """A file's identity, which an atomic replace changes (a new inode); (0, 0) if absent."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (status.st_ino, status.st_mtime_ns)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise IndexMismatchError(f"{path}: not readable JSON ({error})") from None
