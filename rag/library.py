"""The library side of the engine: add files and folders, list, find, delete and tag documents,
and turn document names and tags into a search scope.

Adding a file composes the stages through their front doors: ingestion (``rag.ingest.prepare``:
the file refused or made a PDF, rendered, its words read), the retriever
(``rag.models.encoding``) and the index (staged, then committed at once). A bad file is never
an exception: its result says ``refused`` and why, and nothing of it enters the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from PIL import Image

from rag import ingest
from rag.config import Settings, page_workers
from rag.errors import (
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
    (whose words' index is brought up to date after each add), encoded by ``models``."""

    def __init__(
        self, settings: Settings, models: Models, index: Index, search: HybridSearch
    ) -> None:
        self.settings = settings
        self.models = models
        self.index = index
        self.search = search

    # -- adding -----------------------------------------------------------------------------

    def add_file(
        self,
        path: Path,
        name: str | None = None,
        progress: Progress | None = None,
        password: str | None = None,
        tags: Iterable[str] = (),
    ) -> IndexResult:
        """Index one file: a PDF (``password``: its user password, if encrypted), an image or
        an office file (``rag.ingest.formats``), carrying ``tags`` (a file indexed before gets
        them added). A bad file is not an exception: the result says ``refused`` and why.
        Problems that are not the file's (a missing model, a mismatched index, a bad tag) do
        raise. ``name`` (default: the file's) is shown after ``rag.ingest.names.display_name``
        has made it safe; its extension says what the file is."""
        path = Path(path)
        return self._add_safely([path], name or path.name, progress, password, tags)

    def add_images(
        self,
        paths: Iterable[Path],
        name: str,
        progress: Progress | None = None,
        tags: Iterable[str] = (),
    ) -> IndexResult:
        """Index several images as one document ``name``, a page each, in the given order."""
        return self._add_safely([Path(p) for p in paths], name, progress, None, tags)

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
    ) -> Iterator[IndexResult]:
        """Index files and folders (their documents of ``types``, recursively, in name order:
        ``rag.ingest.sources``), each carrying ``tags``. ``ignored(folder, files)`` hears of
        each folder's files of other types. ``as_one``: the images found make one document of
        that name, a page each (other files are indexed one by one)."""
        tags = clean_tags(tags)  # a bad tag refuses the whole call before any work
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
                yield self.add_file(file, progress=progress, password=password, tags=tags)
        if images:
            yield self.add_images(images, as_one, progress=progress, tags=tags)

    def _add_safely(
        self,
        sources: list[Path],
        name: str,
        progress: Progress | None,
        password: str | None,
        tags: Iterable[str],
    ) -> IndexResult:
        """``_add``, with every failure of the file itself made its one-line refusal: the
        ones the checks know (PdfError), and the ones nobody foresaw (any other exception
        but the app's own RagErrors, logged with its traceback). The index is untouched then:
        nothing is committed before the document is whole."""
        name = display_name(name)
        tags = clean_tags(tags)
        try:
            result = self._add(sources, name, progress, password, tags)
        except PdfError as error:
            return IndexResult(name, "refused", error=without_paths(str(error)))
        except RagError:
            raise  # not the file's: a missing model, a mismatched index, a missing tool
        except Exception as error:
            logger.exception("%s: refused after an unexpected error", name)
            return IndexResult(name, "refused", error=unexpected(name, error))
        if result.status == "skipped" and tags:
            self.index.change_tags(result.doc_id, add=tags)
        if result.status == "indexed":
            self.search.index_words()  # searchable by its words from the next question on
        return result

    def _add(
        self,
        sources: list[Path],
        name: str,
        progress: Progress | None,
        password: str | None,
        tags: tuple[str, ...],
    ) -> IndexResult:
        ingest.check(sources, self.settings, name)
        doc_id = ingest.content_id(sources)
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
            document = Document(doc_id, name, total, added, tags, prepared.unit)
            if not self.index.add(document, staged, vectors):  # another process was first
                return IndexResult(name, "skipped", doc_id, total)
        logger.info("indexed %s (%d pages) as %s", name, total, doc_id)
        notes = tuple(without_paths(note) for note in prepared.notes(rendered))
        return IndexResult(name, "indexed", doc_id, total, warnings=notes)

    # -- documents --------------------------------------------------------------------------

    def documents(self, tags: Iterable[str] = ()) -> list[Document]:
        """Every document, oldest first; with ``tags``, those carrying any of them."""
        documents = self.index.documents()
        wanted = set(clean_tags(tags))
        return [d for d in documents if wanted & set(d.tags)] if wanted else documents

    def find(self, ref: str) -> Document:
        """The document with id ``ref``, else the one named exactly ``ref``; raises
        DocumentNotFoundError, or AmbiguousNameError listing the ids that share the name."""
        document = self.index.get(ref)
        if document is not None:
            return document
        named = [d for d in self.index.documents() if d.name == ref]
        if len(named) > 1:
            ids = ", ".join(d.doc_id for d in named)
            raise AmbiguousNameError(f"{len(named)} documents are named {ref!r} ({ids}): use an id")
        if not named:
            raise DocumentNotFoundError(f"no document with the id or name {ref!r}")
        return named[0]

    def page_image(self, ref: str, page_number: int) -> Image.Image:
        """Page ``page_number`` (1-based) of the document ``ref`` (an id or an exact name) as
        it was indexed; RagError naming the pages it has for one out of range."""
        document = self.find(ref)
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

    def delete(self, ref: str) -> Document:
        """Delete the document ``ref`` (an id or an exact name)."""
        return self.index.delete(self.find(ref).doc_id)

    def tag(self, ref: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Document:
        """Add and remove tags of the document ``ref`` (an id or an exact name)."""
        return self.index.change_tags(self.find(ref).doc_id, add, remove)

    def scope(self, docs: Iterable[str] = (), tags: Iterable[str] = ()) -> set[str] | None:
        """The ids of the documents ``docs`` (ids or exact names) and of those carrying any of
        ``tags``: what a question searches within; None (everything) when both are empty. An
        unknown document or a tag no document carries raises, naming it."""
        docs, tags = list(docs), clean_tags(tags)
        if not docs and not tags:
            return None
        chosen = {self.find(ref).doc_id for ref in docs}
        documents = self.index.documents()
        for tag in tags:
            tagged = {d.doc_id for d in documents if tag in d.tags}
            if not tagged:
                raise TagError(f"no document is tagged {tag!r}")
            chosen |= tagged
        return chosen


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
