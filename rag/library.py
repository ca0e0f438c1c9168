"""The library side of the engine: add files and folders, list, find, delete and tag documents,
and turn document names and tags into a search scope.

Adding a file composes the stages through their front doors: ingestion (``rag.ingest.prepare``:
the file refused or made a PDF, rendered, its words read), the retriever
(``rag.models.encoding``) and the index (staged, then committed at once). A bad file is never
an exception: its result says ``refused`` and why, and nothing of it enters the index.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from PIL import Image

from rag import ingest
from rag.access import Caller, Visibility, may_change, may_read, parse_visibility
from rag.config import Settings, page_workers
from rag.errors import (
    AccessError,
    AmbiguousNameError,
    CollectionFullError,
    DocumentNotFoundError,
    PdfError,
    RagError,
    TagError,
    without_paths,
)
from rag.index import Document, HybridSearch, Index
from rag.ingest import SUPPORTED, display_name, find_documents, kind
from rag.models.encoding import encode_pages
from rag.models.loaded import Models
from rag.tags import clean_tags

logger = logging.getLogger(__name__)

# progress(pages_done, pages_total, document_name)
Progress = Callable[[int, int, str], None]
# record(event, who, **details): the audit log's (rag.audit), or nothing
Record = Callable[..., None]


def _unrecorded(event: str, who: str, **details: object) -> None:
    """No audit log."""


@dataclass(frozen=True)
class IndexResult:
    file: str
    status: Literal["indexed", "skipped", "refused"]
    doc_id: str | None = None
    pages: int = 0
    error: str | None = None
    # indexed, but the user should know: e.g. "14 render blank: the file may be damaged"
    warnings: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if self.status == "indexed":
            notes = f" ({'; '.join(self.warnings)})" if self.warnings else ""
            return f"{self.file}: indexed, {plural(self.pages, 'page')}{notes}"
        if self.status == "skipped":
            return f"{self.file}: already indexed ({plural(self.pages, 'page')})"
        reason = (self.error or "").removeprefix(f"{self.file}: ")
        return f"{self.file}: refused: {reason}"


class Library:
    """The documents of one collection: ``index`` (their pages and vectors) and ``search``
    (whose words' index is brought up to date after each add), encoded by ``models``.

    Every verb acts for a ``caller`` (``rag.access``) and sees exactly the documents they may
    read: one they may not is "not found", never named. Deleting, tagging and sharing are for
    a document's owner and admins. ``groups()`` names the groups a visibility may name (the
    users store's; None: any); ``record`` writes the audit log."""

    def __init__(
        self,
        settings: Settings,
        models: Models,
        index: Index,
        search: HybridSearch,
        *,
        groups: Callable[[], Collection[str] | None] = lambda: None,
        record: Record = _unrecorded,
    ) -> None:
        self.settings = settings
        self.models = models
        self.index = index
        self.search = search
        self.groups = groups
        self.record = record

    # -- adding -----------------------------------------------------------------------------

    def add_file(
        self,
        path: Path,
        name: str | None = None,
        progress: Progress | None = None,
        password: str | None = None,
        tags: Iterable[str] = (),
        *,
        caller: Caller,
        visibility: str = "everyone",
        source: str = "",
        replaces: Document | None = None,
    ) -> IndexResult:
        """Index one file: a PDF (``password``: its user password, if encrypted), an image or
        an office file (``rag.ingest.formats``), carrying ``tags`` (a file indexed before gets
        them added). A bad file is not an exception: the result says ``refused`` and why.
        Problems that are not the file's (a missing model, a mismatched index, a bad tag or
        visibility) do raise. ``name`` (default: the file's) is shown after
        ``rag.ingest.names.display_name`` has made it safe; its extension says what the file is.

        The document is ``caller``'s, readable as ``visibility`` says. Content the caller
        cannot read already (another's private copy) is indexed as their own document, so
        that nothing tells them the other exists. ``source``: the synced file it comes from;
        ``replaces``: its older version, which it replaces at its commit (``rag.sync``)."""
        path = Path(path)
        shown = parse_visibility(visibility, self.groups())
        how = _Placement(caller, shown, source, replaces)
        return self._add_safely([path], name or path.name, progress, password, tags=tags, how=how)

    def add_images(
        self,
        paths: Iterable[Path],
        name: str,
        progress: Progress | None = None,
        tags: Iterable[str] = (),
        *,
        caller: Caller,
        visibility: str = "everyone",
    ) -> IndexResult:
        """Index several images as one document ``name``, a page each, in the given order."""
        how = _Placement(caller, parse_visibility(visibility, self.groups()))
        sources = [Path(p) for p in paths]
        return self._add_safely(sources, name, progress, None, tags=tags, how=how)

    def add_paths(
        self,
        paths: Iterable[Path],
        progress: Progress | None = None,
        password: str | None = None,
        ignored: Callable[[Path, list[Path]], None] | None = None,
        *,
        tags: Iterable[str] = (),
        types: Collection[str] = SUPPORTED,
        as_one: str | None = None,
        caller: Caller,
        visibility: str = "everyone",
    ) -> Iterator[IndexResult]:
        """Index files and folders (their documents of ``types``, recursively, in name order:
        ``rag.ingest.sources``), each carrying ``tags``. ``ignored(folder, files)`` hears of
        each folder's files of other types. ``as_one``: the images found make one document of
        that name, a page each (other files are indexed one by one)."""
        tags = clean_tags(tags)  # a bad tag refuses the whole call before any work
        parse_visibility(visibility, self.groups())  # so does a bad visibility
        shared = {"tags": tags, "caller": caller, "visibility": visibility}
        images: list[Path] = []
        for item in paths:
            path = Path(item)
            found = find_documents(path, types)
            if found.ignored and ignored:
                ignored(path, found.ignored)
            if path.is_dir() and not found.files:
                kinds = "documents" if tuple(types) == SUPPORTED else "files of those types"
                yield IndexResult(path.name, "refused", error=f"{path}: no {kinds} in this folder")
            for file in found.files:
                if as_one and kind(file) == "image":
                    images.append(file)
                    continue
                yield self.add_file(file, progress=progress, password=password, **shared)
        if images:
            yield self.add_images(images, as_one, progress=progress, **shared)

    def _add_safely(
        self,
        sources: list[Path],
        name: str,
        progress: Progress | None,
        password: str | None,
        *,
        tags: Iterable[str],
        how: _Placement,
    ) -> IndexResult:
        """``_add``, with every failure of the file itself made its one-line refusal: the
        ones the checks know (PdfError), and the ones nobody foresaw (any other exception
        but the app's own RagErrors, logged with its traceback). The index is untouched then:
        nothing is committed before the document is whole."""
        name = display_name(name)
        tags = clean_tags(tags)
        try:
            result = self._add(sources, name, progress, password, tags=tags, how=how)
        except PdfError as error:
            return IndexResult(name, "refused", error=without_paths(str(error)))
        except RagError:
            raise  # not the file's: a missing model, a mismatched index, a missing tool
        except Exception as error:
            logger.exception("%s: refused after an unexpected error", name)
            return IndexResult(name, "refused", error=unexpected(name, error))
        if result.status == "skipped" and tags:
            existing = self.index.get(result.doc_id)
            if existing is not None and may_change(how.caller, existing.owner):
                self.index.change_tags(result.doc_id, add=tags)
        if result.status == "indexed":
            self.search.index_words()  # searchable by its words from the next question on
            event = "replace" if how.replaces else "upload"
            self.record(
                event, how.caller.name, doc_id=result.doc_id, name=name, visibility=str(how.shown)
            )
        return result

    def _add(
        self,
        sources: list[Path],
        name: str,
        progress: Progress | None,
        password: str | None,
        *,
        tags: tuple[str, ...],
        how: _Placement,
    ) -> IndexResult:
        ingest.check(sources, self.settings, name)
        doc_id = ingest.content_id(sources)
        existing = self.index.get(doc_id)
        if existing is not None and not self.readable(existing, how.caller):
            doc_id = owned_id(doc_id, how.caller.name)  # another's copy: this one is theirs
            existing = self.index.get(doc_id)
        if existing is not None:
            return IndexResult(name, "skipped", doc_id, existing.pages)
        # Refuses bad files before any model loads.
        prepared = ingest.prepare(sources, name, doc_id, self.settings, password)
        limit = self.settings.max_documents
        if limit and len(self.index.documents()) >= limit:
            raise CollectionFullError(f"{name}: this collection is full ({limit} documents)")
        retriever = self.models.retriever
        total = prepared.pages
        done = (lambda count: progress(count, total, name)) if progress else None
        if done:
            done(0)  # the clock for pages/s and ETA starts here
        with self.index.staging() as staged, self.index.staging() as scratch:
            vectors = self.index.stage_vectors(scratch)  # written behind the encoder
            pages = prepared.render(staged, self.index.page_path)
            workers = page_workers(self.settings)
            busy = self.models.busy
            rendered = encode_pages(pages, retriever, workers, busy, keep=vectors.append, done=done)
            # The pages' words, committed with them: the text layer, else OCR of the images.
            images = {page.page_number: page.path for page in rendered}
            self.index.stage_words(staged, prepared.words(images))
            added = datetime.now(timezone.utc).isoformat(timespec="seconds")
            document = Document(doc_id, name, total, added, tags, prepared.unit, *how.fields)
            if not self.index.add(document, staged, vectors):  # another process was first
                return IndexResult(name, "skipped", doc_id, total)
        logger.info("indexed %s (%d pages) as %s", name, total, doc_id)
        notes = tuple(without_paths(note) for note in prepared.notes(rendered))
        return IndexResult(name, "indexed", doc_id, total, warnings=notes)

    # -- documents --------------------------------------------------------------------------

    @staticmethod
    def readable(document: Document, caller: Caller) -> bool:
        return may_read(caller, document.owner, document.visibility)

    def documents(self, tags: Iterable[str] = (), *, caller: Caller) -> list[Document]:
        """Every document ``caller`` may read, oldest first; with ``tags``, those carrying any
        of them."""
        documents = [d for d in self.index.documents() if self.readable(d, caller)]
        wanted = set(clean_tags(tags))
        return [d for d in documents if wanted & set(d.tags)] if wanted else documents

    def find(self, ref: str, *, caller: Caller) -> Document:
        """The document with id ``ref``, else the one named exactly ``ref``, among those
        ``caller`` may read; raises DocumentNotFoundError, or AmbiguousNameError listing the
        ids that share the name."""
        document = self.index.get(ref)
        if document is not None and self.readable(document, caller):
            return document
        named = [d for d in self.documents(caller=caller) if d.name == ref]
        if len(named) > 1:
            ids = ", ".join(d.doc_id for d in named)
            raise AmbiguousNameError(f"{len(named)} documents are named {ref!r} ({ids}): use an id")
        if not named:
            raise DocumentNotFoundError(f"no document with the id or name {ref!r}")
        return named[0]

    def page_image(self, ref: str, page_number: int, *, caller: Caller) -> Image.Image:
        """Page ``page_number`` (1-based) of the document ``ref`` (an id or an exact name) as
        it was indexed; RagError naming the pages it has for one out of range."""
        document = self.find(ref, caller=caller)
        if not 1 <= page_number <= document.pages:
            raise RagError(
                f"page {page_number} is out of range: {document.name} has {document.pages} "
                f"pages (1 to {document.pages})"
            )
        try:
            with Image.open(self.index.page_image(document.doc_id, page_number)) as image:
                return image.convert("RGB")
        except FileNotFoundError:  # deleted meanwhile
            raise DocumentNotFoundError(f"{document.name} has been deleted") from None

    def delete(self, ref: str, *, caller: Caller) -> Document:
        """Delete the document ``ref`` (an id or an exact name): its owner or an admin."""
        document = self._changeable(ref, caller, "delete")
        deleted = self.index.delete(document.doc_id)
        self.record("delete", caller.name, doc_id=document.doc_id, name=document.name)
        return deleted

    def tag(
        self, ref: str, add: Iterable[str] = (), remove: Iterable[str] = (), *, caller: Caller
    ) -> Document:
        """Add and remove tags of the document ``ref`` (an id or an exact name): its owner or
        an admin."""
        document = self._changeable(ref, caller, "retag")
        changed = self.index.change_tags(document.doc_id, add, remove)
        self.record("retag", caller.name, doc_id=document.doc_id, tags=list(changed.tags))
        return changed

    def share(self, ref: str, visibility: str, *, caller: Caller) -> Document:
        """Make the document ``ref`` readable as ``visibility`` says (``private``,
        ``everyone``, ``group:NAME,...``): its owner or an admin. From the next request on,
        whoever it no longer admits sees no trace of it."""
        shown = parse_visibility(visibility, self.groups())
        document = self._changeable(ref, caller, "change who may read")
        changed = self.index.update(document.doc_id, lambda d: replace(d, visibility=str(shown)))
        self.record("visibility", caller.name, doc_id=document.doc_id, visibility=str(shown))
        return changed

    def _changeable(self, ref: str, caller: Caller, action: str) -> Document:
        document = self.find(ref, caller=caller)
        if not may_change(caller, document.owner):
            raise AccessError(f"only its owner or an admin may {action} {document.name}")
        return document

    def scope(
        self, docs: Iterable[str] = (), tags: Iterable[str] = (), *, caller: Caller
    ) -> set[str] | None:
        """The ids of the documents ``docs`` (ids or exact names) and of those carrying any of
        ``tags``, among those ``caller`` may read: what a question searches within. With
        neither, every readable document (None: everything, for an admin). An unknown
        document or a tag no readable document carries raises, naming it."""
        docs, tags = list(docs), clean_tags(tags)
        if not docs and not tags:
            if caller.admin:
                return None
            return {d.doc_id for d in self.documents(caller=caller)}
        chosen = {self.find(ref, caller=caller).doc_id for ref in docs}
        documents = self.documents(caller=caller)
        for tag in tags:
            tagged = {d.doc_id for d in documents if tag in d.tags}
            if not tagged:
                raise TagError(f"no document is tagged {tag!r}")
            chosen |= tagged
        return chosen


@dataclass(frozen=True)
class _Placement:
    """Whose a new document is and who may read it: ``caller``'s (or, for a new version, the
    owner of the one it ``replaces``), readable as ``shown``; ``source``: its synced file."""

    caller: Caller
    shown: Visibility
    source: str = ""
    replaces: Document | None = None

    @property
    def fields(self) -> tuple[str, str, str, str]:
        """The new record's owner, visibility, source and replaces."""
        old = self.replaces
        owner = old.owner if old else self.caller.name
        return (owner, str(self.shown), self.source, old.doc_id if old else "")


def owned_id(content_id: str, owner: str) -> str:
    """The id of ``owner``'s own copy of content whose id is ``content_id``, when another's
    copy exists that they may not read: as long, and as stable, as a content id.

    >>> owned_id("0123456789abcdef", "alice")
    '7a34580697f8f87a'
    """
    digest = hashlib.sha256(f"{content_id}:{owner}".encode()).hexdigest()
    return digest[: len(content_id)]


def unexpected(name: str, error: Exception) -> str:
    """The one line a user reads for a file that failed in a way no check foresaw.

    >>> unexpected("a.docx", RuntimeError("File 'x' is encrypted\\nmore"))
    "a.docx: could not be read (RuntimeError: File 'x' is encrypted)"
    """
    first = (str(error).strip().splitlines() or [""])[0][:200]
    detail = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return without_paths(f"{name}: could not be read ({detail})")


def plural(count: int, noun: str) -> str:
    """``count`` and the noun, in the plural unless the count is one.

    >>> plural(1, "page"), plural(3, "page")
    ('1 page', '3 pages')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"
