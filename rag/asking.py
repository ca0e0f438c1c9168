"""The asking side of the engine: a question (or a conversation's follow-up) -> the best pages,
and the ``Answer`` that streams from them, explains them (heatmaps, snippets, framed words)
and cites them.

``Asking.ask`` retrieves; the answer text is written only when asked for (``Answer.stream`` or
``Answer.text``), so a client that wants the pages alone never loads the answerer. An
``Answer`` is built from what it needs: a page reader over the index, the models, and the one
setting it reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from PIL import Image

from rag.access import Caller, may_read
from rag.chat import Turn, recent
from rag.config import HYBRID_MODES, Settings, parse_reranker
from rag.errors import ConfigError, DocumentNotFoundError, EmptyIndexError, RagError
from rag.index import Hit, HybridSearch, Index
from rag.library import Library
from rag.models.answerer import PageImage
from rag.models.loaded import Models
from rag.models.rerankers import reorder
from rag.view.choices import SHOWN, WordChoices, choose_words, content_words
from rag.view.evidence import EvidenceBox, evidence_boxes
from rag.view.heatmaps import (
    PageMaps,
    QueryToken,
    QueryWord,
    meaningful_tokens,
    page_maps,
    word_grid,
    words_of,
)
from rag.view.overlay import (
    ALPHA,
    EVIDENCE_FILL,
    EVIDENCE_LINE,
    EVIDENCE_WIDTH,
    draw_boxes,
    render_overlay,
)
from rag.view.snippets import Snippet, matched_boxes, snippet
from rag.words import PageText

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageReader:
    """What a hit points at, read from the index for ``caller``: the page's image, words and
    vectors. A page whose document has been deleted since, or that the caller may no longer
    read (made private meanwhile), raises DocumentNotFoundError naming it: checked at every
    read, so an answer on screen stops showing a page the moment it is taken away."""

    index: Index
    caller: Caller

    def check(self, hit: Hit) -> None:
        document = self.index.get(hit.doc_id)
        if document is None or not may_read(self.caller, document.owner, document.visibility):
            raise gone(hit)

    def image(self, hit: Hit) -> Image.Image:
        """The page image as it was indexed, fully read into memory."""
        self.check(hit)
        try:
            with Image.open(hit.image_path) as image:
                return image.convert("RGB")
        except FileNotFoundError:
            raise gone(hit) from None

    def words(self, hit: Hit) -> PageText:
        """The page's words and boxes (none if it has none)."""
        self.check(hit)
        return self.index.page_words(hit.doc_id, hit.page_number)

    def embedding(self, hit: Hit) -> torch.Tensor:
        """The page's stored (n, dim) multi-vector."""
        self.check(hit)
        try:
            return self.index.page_embedding(hit.doc_id, hit.page_number)
        except DocumentNotFoundError:  # deleted in between
            raise gone(hit) from None


@dataclass
class Answer:
    """Retrieval done; the answer text is produced on demand by ``stream()`` or ``text()``.

    ``question`` is what the user asked; ``searched`` what the retriever searched for (the
    question itself, or a follow-up rewritten to stand alone); ``history`` the earlier turns
    the answerer reads first. ``reader`` reads the hits' pages, ``models`` writes the answer
    and the heatmaps; ``with_text``: the answerer reads each page's words beside its image."""

    question: str
    hits: list[Hit]
    query_embedding: torch.Tensor  # (q, dim), of ``searched``
    tokens: list[QueryToken]  # the searched text's meaningful tokens
    reader: PageReader = field(repr=False)
    models: Models = field(repr=False)
    searched: str = ""
    history: tuple[Turn, ...] = ()
    with_text: bool = False
    _maps: dict[tuple[str, int], PageMaps] = field(default_factory=dict, repr=False)
    _words: dict[tuple[str, int], PageText] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.searched = self.searched or self.question

    @property
    def words(self) -> list[QueryWord]:
        """The searched text's words, in order, repeats and stop words included (tokens of one
        word merged; each Chinese or Japanese character a word, ``words_of``)."""
        return words_of(self.tokens, self.searched)

    def word_choices(self, hit: Hit, limit: int = SHOWN) -> WordChoices:
        """The words a person picks from for ``hit``'s heatmap: the searched text's content
        words (no stop word, no punctuation, a repeated word once), those matching this page
        most first; ``limit`` of them ``shown``, the ``rest`` for a "more" control. Each is a
        ``word`` for ``view`` and ``heatmap_image``. Reuses the page's maps (``heatmaps``)."""
        return choose_words(self.words, self.heatmaps(hit), max(limit, 0))

    @property
    def rewritten(self) -> bool:
        return self.searched != self.question

    def stream(self, max_new_tokens: int | None = None) -> Iterator[str]:
        pages = self.pages()
        answerer = self.models.answerer
        with self.models.answering():
            yield from answerer.stream(self.question, pages, max_new_tokens, self.history)

    def text(self, max_new_tokens: int | None = None) -> str:
        pages = self.pages()
        answerer = self.models.answerer
        with self.models.answering():
            return answerer.answer(self.question, pages, max_new_tokens, self.history)

    def pages(self) -> list[PageImage]:
        """The retrieved pages as the answerer sees them (with their words, if
        RAG_ANSWER_WITH_TEXT)."""
        return [
            PageImage(
                hit.citation, self.page_image(hit), self.page_text(hit) if self.with_text else ""
            )
            for hit in self.hits
        ]

    def page_text(self, hit: Hit) -> str:
        """The retrieved page's words ("" if it has none, or was indexed before words were)."""
        return self.page_words(hit).text

    def page_image(self, hit: Hit) -> Image.Image:
        """The retrieved page as it was indexed; DocumentNotFoundError naming the document if
        it has been deleted since."""
        return self.reader.image(hit)

    def snippet(self, hit: Hit) -> Snippet | None:
        """The stretch of the page's text with the most words of what was searched, those
        words marked (None if it has none of them)."""
        return snippet(self.page_words(hit), self.searched)

    def view(
        self,
        hit: Hit,
        word: int | QueryWord | None = None,
        opacity: float = ALPHA,
        heatmap: bool = True,
        boxes: bool = True,
        *,
        evidence: bool = False,
    ) -> Image.Image:
        """The page as the page view shows it: the heatmap (``heatmap_image``) if ``heatmap``,
        if ``boxes`` a frame around each of its words that what was searched matched, and if
        ``evidence`` a thicker green frame around each of its evidence boxes (``evidence``)."""
        image = self.heatmap_image(hit, word, opacity) if heatmap else self.page_image(hit)
        if boxes:
            image = draw_boxes(image, matched_boxes(self.page_words(hit), self.searched))
        if evidence:
            found = [e.box for e in self.evidence(hit)]
            image = draw_boxes(image, found, EVIDENCE_LINE, EVIDENCE_FILL, EVIDENCE_WIDTH)
        return image

    def evidence(self, hit: Hit) -> list[EvidenceBox]:
        """The regions of ``hit``'s page that support the answer, best first
        (``rag.view.evidence``): the strongest patches of the searched text's content words'
        maps, snapped to the page's words that match them. Page-relative boxes in [0, 1].
        Reuses the page's maps and words (each read once, rechecking the caller's right)."""
        maps = self.heatmaps(hit)
        grids = {w.text: word_grid(maps, w).float().numpy() for w in content_words(self.words)}
        return evidence_boxes(grids, self.page_words(hit))

    def page_words(self, hit: Hit) -> PageText:
        """The retrieved page's words and boxes (read once: every redraw of the page, its
        snippet and its frames use them)."""
        self.reader.check(hit)  # cached, but never past the caller's right to read it
        key = (hit.doc_id, hit.page_number)
        if key not in self._words:
            self._words[key] = self.reader.words(hit)
        return self._words[key]

    def heatmaps(self, hit: Hit) -> PageMaps:
        """Per-token and whole-query similarity maps of one retrieved page (computed once,
        then cached); a page whose document has been deleted since raises
        DocumentNotFoundError naming it."""
        self.reader.check(hit)
        key = (hit.doc_id, hit.page_number)
        if key not in self._maps:
            page = self.reader.embedding(hit)
            image = self.page_image(hit)
            retriever = self.models.retriever
            self._maps[key] = page_maps(retriever, image, page, self.query_embedding, self.tokens)
        return self._maps[key]

    def heatmap_image(
        self, hit: Hit, word: int | QueryWord | None = None, opacity: float = ALPHA
    ) -> Image.Image:
        """The page with the whole-query map (``word`` None) or the map of one word (one of
        ``word_choices``, or ``words[word]``) drawn over it, at ``opacity`` (0: the page
        alone)."""
        maps = self.heatmaps(hit)
        if isinstance(word, int):
            word = self.words[word]
        grid = maps.query if word is None else word_grid(maps, word)
        return render_overlay(self.page_image(hit), grid, opacity=opacity)


class Asking:
    """Questions over one collection's ``library``, searched by ``search`` (pictures and
    words) and answered by ``models``."""

    def __init__(
        self, settings: Settings, models: Models, library: Library, search: HybridSearch
    ) -> None:
        self.settings = settings
        self.models = models
        self.library = library
        self.search = search

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
        rerank: bool | None = None,
        caller: Caller,
    ) -> Answer:
        """Retrieve the best pages for ``question`` (within the documents ``docs`` and those
        tagged any of ``tags``, if given: ``Library.scope``); the answer streams from the
        result. ``hybrid`` overrides Settings.hybrid for this question: how the pages'
        pictures and words are combined (rrf, weighted, off, text).

        ``history``: the conversation's earlier turns. The answerer reads them before the
        pages; with ``rewrite``, it first rewrites a follow-up as a standalone question, and
        that is what the retriever searches (``Answer.searched``). ``caller``: whose question
        it is; only the documents they may read are searched (``Library.scope``).

        ``rerank``: whether the reranker (RAG_RERANKER) reorders the first stage's best
        ``rerank_depth`` pages before the best ``top_k`` are kept (None: when one is set)."""
        question, docs, tags = question.strip(), list(docs), list(tags)
        if not question:
            raise RagError("the question is empty")
        if not self.library.documents(caller=caller):
            raise EmptyIndexError("no documents are indexed yet: add a PDF first")
        # Refuses an unknown document or tag before any model.
        scope = self.library.scope(docs, tags, caller=caller)
        mode = hybrid or self.settings.hybrid
        if mode not in HYBRID_MODES:
            raise ConfigError(f"hybrid: {mode!r} is not one of {', '.join(HYBRID_MODES)}")
        reranking = self.reranking(rerank)  # refused, if it must be, before any model loads
        history = recent(history)
        searched = self.standalone(question, history) if history and rewrite else question
        retriever = self.models.retriever
        with self.models.busy:
            query = retriever.embed_query(searched)
        k = top_k or self.settings.top_k
        depth = max(k, self.settings.rerank_depth) if reranking else k
        weight = self.settings.hybrid_weight
        hits = self.search.search(query, searched, depth, scope, mode=mode, weight=weight)
        if reranking:
            hits = self.reranked(searched, hits, PageReader(self.library.index, caller), k)
        tokens = meaningful_tokens(
            retriever.processor.tokenizer, retriever.query_token_ids(searched), searched
        )
        self.library.record(
            "question",
            caller.name,
            question=question,
            scope={"docs": list(docs), "tags": list(tags)},
            pages=[{"doc_id": hit.doc_id, "page": hit.page_number} for hit in hits],
        )
        return Answer(
            question,
            hits,
            query,
            tokens,
            PageReader(self.library.index, caller),
            self.models,
            searched,
            history,
            with_text=self.settings.answer_with_text,
        )

    def reranking(self, rerank: bool | None) -> bool:
        """Whether a question's pages are reranked: as ``rerank`` says, else when RAG_RERANKER
        is set; asked for without one, refused in one line."""
        configured = parse_reranker(self.settings.reranker) is not None
        if rerank and not configured:
            raise RagError("no reranker is set: RAG_RERANKER=text:MODEL or visual:MODEL")
        return configured if rerank is None else rerank

    def reranked(self, question: str, hits: list[Hit], reader: PageReader, k: int) -> list[Hit]:
        """The best ``k`` of ``hits`` by the reranker's score of each page (its words or its
        picture, read for the caller; a page deleted since the search is dropped)."""
        reranker = self.models.reranker
        words = reranker.reads == "words"
        kept, pages = [], []
        for hit in hits:
            try:
                pages.append(reader.words(hit).text if words else reader.image(hit))
            except DocumentNotFoundError:  # deleted since the search
                continue
            kept.append(hit)
        with self.models.busy:
            scores = reranker.score(question, pages)
        return reorder(kept, scores, k)

    def standalone(self, question: str, history: tuple[Turn, ...]) -> str:
        """``question`` rewritten by the answerer to stand without the conversation
        ``history``: what a follow-up searches."""
        answerer = self.models.answerer
        with self.models.answering():
            searched = answerer.rewrite(question, history)
        logger.info("follow-up %r searched as %r", question, searched)
        return searched


def gone(hit: Hit) -> DocumentNotFoundError:
    return DocumentNotFoundError(f"{hit.name} has been deleted since")
