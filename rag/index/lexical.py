"""The pages' words in a full-text index: tantivy (a Rust search library, like Lucene), ranked
by BM25, searched within a scope like the vectors.

Chosen by measurement over SQLite's FTS5 (``python -m benchmarks.lexical``): FTS5 scores every
page holding any term of the question, tantivy skips the pages that cannot reach the top k
(block-max WAND), so a question of common words costs it a millisecond at 100k pages where FTS5
took hundreds.

The index is derived data, in ``<store root>/lexical/``: it is filled from each committed
document's ``text.json`` (written with its page images, inside the document store's atomic
commit) and checked against the store's documents before every search, so a crash between the
commit and the insert, or a delete by another process, is caught up the next time, never
leaving words of a document that is not there or missing those of one that is. Each document
has one marker entry (page 0, no words) beside its pages', so the index knows which documents it
holds even when none of their pages had words.

Terms are ``rag.terms``'s (split and folded in Python, indexed as given), so the index, Qdrant's
sparse vectors and the snippets agree on what a word is.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import tantivy
from tantivy import Occur, Query

from rag.index.durable import writer_lock
from rag.index.store import load_texts
from rag.terms import page_terms, question_terms

if TYPE_CHECKING:
    from rag.index.store import DocumentStore

logger = logging.getLogger(__name__)

FOLDER = "lexical"
OLD_FILE = "lexical.sqlite"  # the FTS5 index of earlier releases: derived, so removed
WRITER_HEAP = 64 * 2**20  # bytes buffered before a segment is written
MARKER = 0  # the page number of a document's marker entry


@dataclass(frozen=True)
class TextHit:
    doc_id: str
    page_number: int
    score: float  # BM25: higher is better


def schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # folded terms joined by spaces; term frequencies kept, positions not (no phrase queries)
    builder.add_text_field("text", tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("doc_id", stored=True, tokenizer_name="raw")
    builder.add_integer_field("page", stored=True, indexed=True)
    return builder.build()


class LexicalIndex:
    """BM25 over the pages of the documents in ``store``, in ``<store root>/lexical/``."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._synced: frozenset[str] | None = None  # the documents at the last sync
        self._schema = schema()
        self._folder = store.root / FOLDER
        (store.root / OLD_FILE).unlink(missing_ok=True)
        self._tantivy: tantivy.Index | None = None

    @property
    def _index(self) -> tantivy.Index:
        """The index in ``_folder``, opened on first use (and again after ``close``)."""
        if self._tantivy is None:
            self._tantivy = self._open()
        return self._tantivy

    def _open(self) -> tantivy.Index:
        """The index in ``_folder``; one of another layout (or unreadable) is made again."""
        self._folder.mkdir(parents=True, exist_ok=True)
        try:
            index = tantivy.Index(self._schema, path=str(self._folder))
        except ValueError as error:
            logger.warning("The words' index is rebuilt (%s)", error)
            with writer_lock(self._folder):
                for entry in self._folder.iterdir():
                    if entry.name != ".lock":
                        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                index = tantivy.Index(self._schema, path=str(self._folder))
        index.config_reader("manual")  # reloaded here, when the documents change
        return index

    def search(
        self, question: str, k: int, scope: Collection[str] | None = None, sync: bool = True
    ) -> list[TextHit]:
        """The ``k`` pages whose words best match ``question`` (BM25), best first; within
        ``scope`` (document ids) if given. Pages that share no term with it are not returned;
        English function words are not searched for. ``sync=False``: the caller has just
        called ``sync``."""
        terms = question_terms(question)
        if not terms or k <= 0 or (scope is not None and not scope):
            return []
        if sync:
            self.sync()
        query = self._query(terms, scope)
        with self._lock:
            searcher = self._index.searcher()
            hits = [(score, searcher.doc(a)) for score, a in searcher.search(query, k).hits]
        return [TextHit(d["doc_id"][0], int(d["page"][0]), float(s)) for s, d in hits]

    def _query(self, terms: list[str], scope: Collection[str] | None) -> Query:
        words = Query.boolean_query(
            [(Occur.Should, Query.term_query(self._schema, "text", t)) for t in terms]
        )
        if scope is None:
            return words
        within = Query.term_set_query(self._schema, "doc_id", sorted(set(scope)))
        # a filter: it adds nothing to the pages' scores
        return Query.boolean_query(
            [(Occur.Must, words), (Occur.Must, Query.const_score_query(within, 0.0))]
        )

    def sync(self) -> None:
        """Add the words of committed documents the index lacks; remove those of documents that
        are gone."""
        wanted = self.store.doc_ids()
        with self._lock:
            if wanted is self._synced or wanted == self._synced:
                return  # the same documents as at the last check: nothing to do
            self._index.reload()  # another process may have brought it up to date
            if self._held() != wanted:
                with writer_lock(self._folder):  # one writer at a time, across processes
                    self._index.reload()
                    self._update(wanted, self._held())
                self._index.reload()
            self._synced = wanted

    def _held(self) -> set[str]:
        """The documents whose words the index holds (by their marker entries)."""
        searcher = self._index.searcher()
        if not searcher.num_docs:
            return set()
        markers = Query.term_query(self._schema, "page", MARKER)
        hits = searcher.search(markers, searcher.num_docs, count=False).hits
        return {searcher.doc(address)["doc_id"][0] for _, address in hits}

    def _update(self, wanted: frozenset[str], held: set[str]) -> None:
        """One commit: the words of ``wanted - held`` in, those of ``held - wanted`` out."""
        if wanted == held:
            return
        writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=1)
        try:
            for doc_id in sorted(held - wanted):
                writer.delete_documents_by_term("doc_id", doc_id)
            for doc_id in sorted(wanted - held):
                for page in load_texts(self.store.folder(doc_id)):
                    if page.words:
                        text = " ".join(page_terms(page.text))
                        writer.add_document(
                            tantivy.Document(text=text, doc_id=doc_id, page=page.page_number)
                        )
                writer.add_document(tantivy.Document(doc_id=doc_id, page=MARKER))
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()  # also lets go of tantivy's own writer lock

    def close(self) -> None:
        """Let go of the index's files (the next search opens them again)."""
        with self._lock:
            self._tantivy, self._synced = None, None
