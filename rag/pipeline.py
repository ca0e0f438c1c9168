"""The engine's public verbs: add_file, documents, delete, search, ask, heatmaps.

Stages are composed here and nowhere else; the CLI (app.py) and the web UI (ui/) only call
this. Models load lazily, once, on first use, so listing or deleting documents never loads one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import shutil
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from rag.chat import Turn, recent
from rag.config import HYBRID_MODES, Settings, page_workers
from rag.errors import (
    AmbiguousNameError,
    CollectionFullError,
    ConfigError,
    DocumentNotFoundError,
    EmptyIndexError,
    PdfError,
    RagError,
    TagError,
)
from rag.index import Document, Hit, Index, open_index
from rag.index.staged import StagedPages
from rag.index.store import load_texts, save_texts
from rag.ingest.convert import as_pdf, unit_of
from rag.ingest.formats import SUPPORTED, kind
from rag.ingest.names import display_name
from rag.ingest.pdf import (
    PdfInfo,
    RenderedPage,
    check_size,
    file_budget,
    inspect_pdf,
    render_pages,
    rendering_notes,
)
from rag.ingest.sources import find_documents
from rag.ingest.text import page_texts
from rag.models.answerer import Generator, PageImage
from rag.models.checkpoints import resolve_device
from rag.models.retriever import Retriever
from rag.pipelining import Behind, ahead, inline
from rag.tags import clean_tags
from rag.view.heatmaps import (
    PageMaps,
    QueryToken,
    QueryWord,
    meaningful_tokens,
    page_maps,
    word_grid,
    words_of,
)
from rag.view.overlay import ALPHA, draw_boxes, render_overlay
from rag.view.snippets import Snippet, matched_boxes, snippet
from rag.words import PageText

logger = logging.getLogger(__name__)

# Prepared pages held ahead of the encoder at most: a ColQwen2 page's inputs are ~14 MB (fp32
# patches), so a GPU's batches of 64 are prepared two at a time, not one per page worker.
PAGES_AHEAD = 128

# Where collections made by Pipeline.collection live, under the data dir.
COLLECTIONS = "collections"

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


@dataclass
class Answer:
    """Retrieval done; the answer text is produced on demand by ``stream()`` or ``text()``.

    ``question`` is what the user asked; ``searched`` what the retriever searched for (the
    question itself, or a follow-up rewritten to stand alone); ``history`` the earlier turns
    the answerer reads first."""

    question: str
    hits: list[Hit]
    query_embedding: torch.Tensor  # (q, dim), of ``searched``
    tokens: list[QueryToken]  # the searched text's meaningful tokens
    _pipeline: Pipeline = field(repr=False)
    searched: str = ""
    history: tuple[Turn, ...] = ()
    _maps: dict[tuple[str, int], PageMaps] = field(default_factory=dict, repr=False)
    _words: dict[tuple[str, int], PageText] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.searched = self.searched or self.question

    @property
    def words(self) -> list[QueryWord]:
        """The searched text's words (tokens of one word merged): the heatmap choices."""
        return words_of(self.tokens, self.searched)

    @property
    def rewritten(self) -> bool:
        return self.searched != self.question

    def stream(self, max_new_tokens: int | None = None) -> Iterator[str]:
        pages = self.pages()
        with self._pipeline.models.busy:
            yield from self._pipeline.generator.stream(
                self.question, pages, max_new_tokens, self.history
            )

    def text(self, max_new_tokens: int | None = None) -> str:
        pages = self.pages()
        with self._pipeline.models.busy:
            return self._pipeline.generator.answer(
                self.question, pages, max_new_tokens, self.history
            )

    def pages(self) -> list[PageImage]:
        """The retrieved pages as the answerer sees them (with their words, if
        RAG_ANSWER_WITH_TEXT)."""
        with_text = self._pipeline.settings.answer_with_text
        return [
            PageImage(hit.citation, self.page_image(hit), self.page_text(hit) if with_text else "")
            for hit in self.hits
        ]

    def page_text(self, hit: Hit) -> str:
        """The retrieved page's words ("" if it has none, or was indexed before words were)."""
        return self.page_words(hit).text

    def page_image(self, hit: Hit) -> Image.Image:
        """The retrieved page as it was indexed; DocumentNotFoundError naming the document if
        it has been deleted since."""
        try:
            return open_image(hit.image_path)
        except FileNotFoundError:
            raise DocumentNotFoundError(f"{hit.name} has been deleted since") from None

    def snippet(self, hit: Hit) -> Snippet | None:
        """The stretch of the page's text with the most words of what was searched, those
        words marked (None if it has none of them)."""
        return snippet(self.page_words(hit), self.searched)

    def view(
        self,
        hit: Hit,
        word: int | None = None,
        opacity: float = ALPHA,
        heatmap: bool = True,
        boxes: bool = True,
    ) -> Image.Image:
        """The page as the page view shows it: the heatmap (``heatmap_image``) if ``heatmap``,
        and, if ``boxes``, a frame around each of its words that what was searched matched."""
        image = self.heatmap_image(hit, word, opacity) if heatmap else self.page_image(hit)
        if not boxes:
            return image
        return draw_boxes(image, matched_boxes(self.page_words(hit), self.searched))

    def page_words(self, hit: Hit) -> PageText:
        """The retrieved page's words and boxes (read once: every redraw of the page, its
        snippet and its frames use them)."""
        key = (hit.doc_id, hit.page_number)
        if key not in self._words:
            self._words[key] = self._pipeline.page_words(hit.doc_id, hit.page_number)
        return self._words[key]

    def heatmaps(self, hit: Hit) -> PageMaps:
        """Similarity maps of one retrieved page (computed once, then cached)."""
        key = (hit.doc_id, hit.page_number)
        if key not in self._maps:
            self._maps[key] = self._pipeline.heatmaps(self, hit)
        return self._maps[key]

    def heatmap_image(
        self, hit: Hit, word: int | None = None, opacity: float = ALPHA
    ) -> Image.Image:
        """The page with the whole-query map (``word`` None) or the map of ``words[word]``
        drawn over it, at ``opacity`` (0: the page alone)."""
        maps = self.heatmaps(hit)
        grid = maps.query if word is None else word_grid(maps, self.words[word])
        return render_overlay(self.page_image(hit), grid, opacity=opacity)


class Models:
    """The retriever and the answerer: loaded once, on first use, shared by every collection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._retriever: Retriever | None = None
        self._generator: Generator | None = None
        self._lock = threading.Lock()
        # Held while a model computes (a batch of pages, a query, an answer), so that uploads,
        # which render outside it, and questions take turns on the device. A Lock, not an
        # RLock: a streamed answer may resume, and release it, on another thread.
        self.busy = threading.Lock()

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever.load(self.settings)
            return self._retriever

    @property
    def generator(self) -> Generator:
        with self._lock:
            if self._generator is None:
                self._generator = Generator.load(self.settings)
            return self._generator


class Pipeline:
    def __init__(
        self, settings: Settings, index: Index | None = None, models: Models | None = None
    ) -> None:
        self.settings = settings
        self._index = index
        self.models = models or Models(settings)

    def collection(self, name: str, **limits: int) -> Pipeline:
        """Another collection of documents, ``name`` (letters, digits, ``-`` and ``_``): its own
        index under ``<data-dir>/collections/NAME``, served by the same loaded models;
        ``limits`` override Settings fields such as max_documents or max_pages."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ValueError(f"not a collection name: {name!r}")
        data_dir = self.settings.data_dir / COLLECTIONS / name
        settings = dataclasses.replace(self.settings, data_dir=data_dir, **limits)
        return Pipeline(settings, models=self.models)

    def drop(self) -> None:
        """Delete this collection: its documents, its vectors (a Qdrant collection too) and its
        folder. A public session's collection ends this way."""
        index = self.index
        try:
            index.drop()
        finally:
            index.close()
            shutil.rmtree(self.settings.data_dir, ignore_errors=True)

    def drop_collections(self) -> None:
        """Delete every collection made by ``collection`` (e.g. public sessions a previous run
        of the app left behind), each through its index, so vectors held elsewhere go too."""
        root = self.settings.data_dir / COLLECTIONS
        for folder in sorted(root.iterdir()) if root.exists() else []:
            try:
                self.collection(folder.name).drop()
            except (RagError, ValueError) as error:  # another app's folder, a mismatched index
                logger.warning("collection %s: %s; removing its folder", folder.name, error)
        shutil.rmtree(root, ignore_errors=True)

    def model_problems(self) -> list[str]:
        """Why the retriever or the answerer could not load, found without loading either (their
        configs are read, not their weights): one line each, naming the model and the fix; empty
        when both are found and supported."""
        from rag.models.checkpoints import locate
        from rag.models.families import answerer_family, retriever_family

        checks = (
            (self.settings.retriever, "RAG_RETRIEVER", retriever_family),
            (self.settings.generator, "RAG_GENERATOR", answerer_family),
        )
        problems = []
        for model_id, setting, family_of in checks:
            try:
                family_of(locate(model_id, setting))
            except RagError as error:
                problems.append(str(error))
        return problems

    def warm(self, search: bool = True) -> None:
        """Prepare before the first request: the index's search layout (``search``) and, in binary
        mode, the popcount kernel, compiled once per process for every collection."""
        if search:
            self.index.warm()
        elif self.settings.index_mode == "binary":
            from rag.index.binary import warmup

            warmup()

    # -- lazily built stages ----------------------------------------------------------------

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = open_index(self.settings, resolve_device(self.settings.device))
        return self._index

    @property
    def retriever(self) -> Retriever:
        return self.models.retriever

    @property
    def generator(self) -> Generator:
        return self.models.generator

    # -- documents --------------------------------------------------------------------------

    def add_file(
        self,
        path: Path,
        name: str | None = None,
        progress: Progress | None = None,
        password: str | None = None,
        tags: Iterable[str] = (),
    ) -> IndexResult:
        """Index one file: a PDF (``password``: its user password, if encrypted), an image or
        an office file (``rag.ingest.formats``), carrying ``tags`` (a file indexed before gets them
        added). A bad file is not an exception: the result says ``refused`` and why. Problems
        that are not the file's (a missing model, a mismatched index, a bad tag) do raise.
        ``name`` (default: the file's) is shown after ``rag.ingest.names.display_name`` has made it
        safe; its extension says what the file is."""
        path = Path(path)
        return self._add_safely([path], name or path.name, progress, password, tags)

    add_pdf = add_file  # the name of earlier releases

    def add_images(
        self,
        paths: Iterable[Path],
        name: str,
        progress: Progress | None = None,
        tags: Iterable[str] = (),
    ) -> IndexResult:
        """Index several images as one document ``name``, a page each, in the given order."""
        return self._add_safely([Path(p) for p in paths], name, progress, None, tags)

    def _add_safely(
        self,
        sources: list[Path],
        name: str,
        progress: Progress | None,
        password: str | None,
        tags: Iterable[str],
    ) -> IndexResult:
        name = display_name(name)
        tags = clean_tags(tags)
        try:
            result = self._add(sources, name, progress, password, tags)
        except PdfError as error:
            return IndexResult(name, "refused", error=str(error))
        if result.status == "skipped" and tags:
            self.index.change_tags(result.doc_id, add=tags)
        return result

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
        ``rag.ingest.sources``), each carrying ``tags``. ``ignored(folder, files)`` hears of each
        folder's files of other types. ``as_one``: the images found make one document of
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

    def delete(self, ref: str) -> Document:
        """Delete the document ``ref`` (an id or an exact name)."""
        return self.index.delete(self.find(ref).doc_id)

    def tag(self, ref: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Document:
        """Add and remove tags of the document ``ref`` (an id or an exact name)."""
        return self.index.change_tags(self.find(ref).doc_id, add, remove)

    def scope(self, docs: Iterable[str] = (), tags: Iterable[str] = ()) -> set[str] | None:
        """The ids of the documents ``docs`` (ids or exact names) and of those carrying any of
        ``tags``: what ``ask`` searches within; None (everything) when both are empty. An
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

    def _add(
        self,
        sources: list[Path],
        name: str,
        progress: Progress | None,
        password: str | None,
        tags: tuple[str, ...],
    ) -> IndexResult:
        for source in sources:
            check_size(source, self.settings, name)
        doc_id = _content_id(sources)
        existing = self.index.get(doc_id)
        if existing is not None:
            return IndexResult(name, "skipped", doc_id, existing.pages)
        # Refuses bad files before any model loads; converting (images, office files) and
        # rendering share the file's one budget.
        budget = file_budget(self.settings)
        path = as_pdf(sources, name, doc_id, self.settings, budget)
        info = inspect_pdf(path, self.settings, password=password, name=name, budget=budget)
        limit = self.settings.max_documents
        if limit and len(self.index.documents()) >= limit:
            raise CollectionFullError(f"{name}: this collection is full ({limit} documents)")
        retriever = self.retriever
        if progress:
            progress(0, info.pages, name)  # the clock for pages/s and ETA starts here
        with self.index.staging() as staged, self.index.staging() as scratch:
            # The encoder's output is written to disk behind it, on another thread.
            embeddings = StagedPages(scratch / "vectors.staged")
            prepared = self._prepared(path, staged, info, retriever)
            rendered: list[RenderedPage] = []
            with closing(prepared), Behind(embeddings.append, depth=2) as writer:
                for pages, inputs in prepared:
                    with self.models.busy:
                        encoded = retriever.encode(inputs)
                    writer.submit(encoded)  # may wait for the disk: not while holding the models
                    rendered += pages
                    if progress:
                        progress(len(rendered), info.pages, name)
                writer.finish()
            # The pages' words, committed with them: the text layer, else OCR of the images.
            images = {page.page_number: page.path for page in rendered}
            texts = page_texts(
                path, info.pages, images, self.settings, info.budget, password=info.password
            )
            save_texts(staged, texts)
            added = datetime.now(timezone.utc).isoformat(timespec="seconds")
            unit = unit_of(name, path, info.pages, info.budget)
            document = Document(doc_id, name, info.pages, added, tags, unit)
            if not self.index.add(document, staged, embeddings):  # another process was first
                return IndexResult(name, "skipped", doc_id, info.pages)
        self.index.index_words()  # searchable by its words from the next question on
        blank = sum(page.blank for page in rendered)
        complaints = any(page.complaints for page in rendered)
        warnings = tuple(rendering_notes(info, blank, complaints))
        logger.info("indexed %s (%d pages) as %s", name, info.pages, doc_id)
        return IndexResult(name, "indexed", doc_id, info.pages, warnings=warnings)

    def _prepared(
        self, path: Path, staged: Path, info: PdfInfo, retriever: Retriever
    ) -> Iterator[tuple[list[RenderedPage], Any]]:
        """Batches of rendered pages with their model inputs, in page order: poppler renders
        and the processor prepares them ahead of the encoder, on page-worker threads; or, with
        one page worker and the encoder on the CPU, on the encoder's thread (``prepares_inline``).
        """
        batches = _batches(render_pages(path, staged, self.settings, info), retriever)
        workers = page_workers(self.settings)
        prepare = lambda b: retriever.preprocess([open_page(p) for p in b])  # noqa: E731
        if prepares_inline(workers, retriever.device.type):
            return inline(batches, prepare)
        depth = prepare_depth(workers, retriever.batch_size)
        return ahead(batches, prepare, depth=depth, workers=min(workers, depth))

    # -- questions --------------------------------------------------------------------------

    def search(
        self,
        question: str,
        top_k: int | None = None,
        docs: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> list[Hit]:
        return self.ask(question, top_k, docs, tags).hits

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        docs: Iterable[str] = (),
        tags: Iterable[str] = (),
        *,
        history: Iterable[Turn] = (),
        rewrite: bool = True,
        hybrid: str | None = None,
    ) -> Answer:
        """Retrieve the best pages for ``question`` (within the documents ``docs`` and those
        tagged any of ``tags``, if given: ``scope``); the answer streams from the result.
        ``hybrid`` overrides Settings.hybrid for this question: how the pages' pictures and
        words are combined (rrf, weighted, off, text).

        ``history``: the conversation's earlier turns. The answerer reads them before the
        pages; with ``rewrite``, it first rewrites a follow-up as a standalone question, and
        that is what the retriever searches (``Answer.searched``)."""
        question = question.strip()
        if not question:
            raise RagError("the question is empty")
        if not self.index.documents():
            raise EmptyIndexError("no documents are indexed yet: add a PDF first")
        scope = self.scope(docs, tags)  # refuses an unknown document or tag before any model
        history = recent(history)
        searched = self._standalone(question, history) if history and rewrite else question
        retriever = self.retriever
        with self.models.busy:
            query = retriever.embed_query(searched)
        mode = hybrid or self.settings.hybrid
        if mode not in HYBRID_MODES:
            raise ConfigError(f"hybrid: {mode!r} is not one of {', '.join(HYBRID_MODES)}")
        k = top_k or self.settings.top_k
        weight = self.settings.hybrid_weight
        hits = self.index.search_hybrid(query, searched, k, scope, mode=mode, weight=weight)
        tokens = meaningful_tokens(
            retriever.processor.tokenizer, retriever.query_token_ids(searched), searched
        )
        return Answer(question, hits, query, tokens, self, searched, history)

    def _standalone(self, question: str, history: tuple[Turn, ...]) -> str:
        generator = self.generator
        with self.models.busy:
            searched = generator.rewrite(question, history)
        logger.info("follow-up %r searched as %r", question, searched)
        return searched

    def page_words(self, doc_id: str, page_number: int) -> PageText:
        """One page's words and their boxes, as stored with the document."""
        texts = load_texts(self.index.store.folder(doc_id))
        return next((t for t in texts if t.page_number == page_number), PageText(page_number))

    def heatmaps(self, answer: Answer, hit: Hit) -> PageMaps:
        """Per-token and whole-query similarity maps of one retrieved page; a page whose
        document has been deleted since raises DocumentNotFoundError naming it."""
        if self.index.get(hit.doc_id) is None:
            raise DocumentNotFoundError(f"{hit.name} has been deleted since")
        image = answer.page_image(hit)
        try:
            page = self.index.page_embedding(hit.doc_id, hit.page_number)
        except DocumentNotFoundError:  # deleted in between
            raise DocumentNotFoundError(f"{hit.name} has been deleted since") from None
        return page_maps(self.retriever, image, page, answer.query_embedding, answer.tokens)


def plural(count: int, noun: str) -> str:
    """``count`` and the noun, in the plural unless the count is one.

    >>> plural(1, "page"), plural(3, "page")
    ('1 page', '3 pages')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"


def prepares_inline(workers: int, device: str) -> bool:
    """Whether pages are rendered and prepared on the encoder's thread, between its batches:
    with one page worker (2 cores) and a CPU encoder, whose threads take both cores. Work run
    beside them slowed the encoder more than it overlapped: a page indexed 6-10% faster inline,
    in interleaved runs (the latency benchmark's preparation lever).

    >>> prepares_inline(1, "cpu"), prepares_inline(2, "cpu"), prepares_inline(1, "cuda")
    (True, False, False)
    """
    return workers == 1 and device == "cpu"


def prepare_depth(workers: int, batch_size: int) -> int:
    """Batches preprocessed at once, and waiting for the encoder: ``workers``, but no more than
    ``PAGES_AHEAD`` pages' worth (and never fewer than two batches, to overlap at all).

    >>> prepare_depth(workers=8, batch_size=4), prepare_depth(8, 64), prepare_depth(1, 4)
    (8, 2, 2)
    """
    return max(2, min(workers, PAGES_AHEAD // batch_size))


def _batches(pages: Iterator[RenderedPage], retriever: Retriever) -> Iterator[list[RenderedPage]]:
    """Consecutive pages in lists of the retriever's batch size (the last may be shorter)."""
    batch: list[RenderedPage] = []
    for page in pages:
        batch.append(page)
        if len(batch) == retriever.batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def open_page(page: RenderedPage) -> Image.Image:
    return open_image(page.path)


def open_image(path: Path) -> Image.Image:
    """A page image fully read into memory (no file handle left open)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def _content_id(paths: list[Path]) -> str:
    """Documents are keyed by content: the same bytes under any name are one document (and
    the same images in the same order, made one document)."""
    digest = hashlib.sha256()
    for path in paths:
        if len(paths) > 1:
            digest.update(b"\x00file\x00")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
