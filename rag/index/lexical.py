"""The pages' words in a full-text index: SQLite's FTS5 (Python's standard library), ranked by
BM25, searched within a scope like the vectors.

The index is derived data: it is filled from each committed document's ``text.json`` (written
with its page images, inside the document store's atomic commit) and checked against the
store's documents before every search, so a crash between the commit and the insert, or a
delete by another process, is caught up the next time, never leaving words of a document
that is not there or missing those of one that is.

Tokenisation: FTS5's ``unicode61`` tokenizer (letters and digits of every script are word
characters; case folded; ``remove_diacritics 2`` so ``resume`` finds ``résumé``; Arabic and
Hebrew words are tokens like any other), plus one step of its own: Chinese, Japanese and Korean
characters are each made a token (written without spaces, their words cannot be found
otherwise), so a CJK query matches the pages holding its characters, ranked by how many.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import unicodedata
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.text import load_texts

if TYPE_CHECKING:
    from rag.index.store import DocumentStore

FILE = "lexical.sqlite"
MAX_TERMS = 64  # of a question: more is not a question
# English function words: on nearly every page, they cost a search much and tell it little.
# fmt: off
STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how",
    "in", "is", "it", "its", "of", "on", "or", "the", "this", "that", "to", "was", "were",
    "what", "when", "where", "which", "who", "whom", "why", "will", "with",
))
# fmt: on
_CJK = re.compile(
    "([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002fa1f])"
)
_WORD = re.compile(r"\w+", re.UNICODE)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS pages USING fts5("
    "text, doc_id UNINDEXED, page UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')",
    # each folded term's page count, kept with the pages (FTS5's own vocabulary table reads a
    # term's whole page list to count it: 30 ms a question at 100k pages)
    "CREATE TABLE IF NOT EXISTS df (term TEXT PRIMARY KEY, pages INTEGER NOT NULL)",
)
# A term on more than this share of the pages weighs little in BM25 (its IDF is small) but
# costs the most to score (every page holding it): it is left out of the query, unless every
# term of the question is that common (then the rarest one stays).
COMMON_SHARE = 0.2


@dataclass(frozen=True)
class TextHit:
    doc_id: str
    page_number: int
    score: float  # BM25: higher is better


def spaced(text: str) -> str:
    """``text`` with each CJK character set apart, so that each is a token.

    >>> spaced("東京の売上 2024")
    ' 東  京  の  売  上  2024'
    """
    return _CJK.sub(r" \1 ", text)


def fold_term(term: str) -> str:
    """A term as the ``unicode61 remove_diacritics 2`` tokenizer stores it: case-folded,
    accents removed.

    >>> fold_term("Résumé")
    'resume'
    """
    decomposed = unicodedata.normalize("NFKD", term.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms_of(text: str, limit: int | None = MAX_TERMS) -> list[str]:
    """The words of ``text`` as search terms (each CJK character one), each once, at most
    ``limit`` of them (a question's); ``limit=None``: every word, repeats kept (a page's).

    >>> terms_of("Who approved invoice INV-2024-0173?")
    ['Who', 'approved', 'invoice', 'INV', '2024', '0173']
    """
    words = _WORD.findall(spaced(text))
    return words if limit is None else list(dict.fromkeys(words))[:limit]


class LexicalIndex:
    """BM25 over the pages of the documents in ``store``, in ``<store root>/lexical.sqlite``."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._synced: frozenset[str] | None = None  # the documents at the last sync
        self._pages = 0  # pages with words, counted at the last sync
        # Autocommit, with explicit BEGIN IMMEDIATE: another process's writer waits its turn.
        self._db = sqlite3.connect(
            store.root / FILE, timeout=30, check_same_thread=False, isolation_level=None
        )
        for statement in _SCHEMA:
            self._db.execute(statement)
        with self._transaction():  # made before page counts were kept: count them once
            if not self._db.execute("SELECT 1 FROM df LIMIT 1").fetchone():
                self._count(self._db.execute("SELECT text FROM pages").fetchall(), +1)

    def search(
        self, question: str, k: int, scope: Collection[str] | None = None, sync: bool = True
    ) -> list[TextHit]:
        """The ``k`` pages whose words best match ``question`` (BM25), best first; within
        ``scope`` (document ids) if given. Pages that share no word with it are not returned.
        English function words are left out of the query. ``sync=False``: the caller has just
        called ``sync`` (under its own lock)."""
        terms = [t for t in terms_of(question) if t.casefold() not in STOPWORDS]
        if not terms or k <= 0 or (scope is not None and not scope):
            return []
        if sync:
            self.sync()
        terms = self._selective(terms)
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        query = "SELECT doc_id, page, bm25(pages) FROM pages WHERE pages MATCH ?"
        arguments: list = [match]
        if scope is not None:
            query += " AND doc_id IN (SELECT value FROM json_each(?))"
            arguments.append(json.dumps(sorted(set(scope))))
        query += " ORDER BY bm25(pages) LIMIT ?"
        arguments.append(k)
        with self._lock:
            rows = self._db.execute(query, arguments).fetchall()
        return [TextHit(doc_id, int(page), -float(score)) for doc_id, page, score in rows]

    def _selective(self, terms: list[str]) -> list[str]:
        """``terms`` without those on more than ``COMMON_SHARE`` of the pages (the rarest one
        is kept if all are)."""
        folded = {term: fold_term(term) for term in terms}
        distinct = sorted(set(folded.values()))  # "Revenue" and "revenue" are one term
        marks = ",".join("?" * len(distinct))
        with self._lock:
            pages = self._pages
            counts = dict(
                self._db.execute(
                    f"SELECT term, pages FROM df WHERE term IN ({marks})",
                    distinct,
                ).fetchall()
            )
        if not pages:
            return terms
        frequency = {term: counts.get(folded[term], 0) / pages for term in terms}
        kept = [term for term in terms if frequency[term] <= COMMON_SHARE]
        return kept or [min(terms, key=frequency.get)]

    def sync(self) -> None:
        """Add the words of committed documents the index lacks; remove those of documents that
        are gone."""
        wanted = frozenset(document.doc_id for document in self.store.documents())
        with self._lock:
            if wanted == self._synced:
                return  # the same documents as at the last check: nothing to do
            held = {row[0] for row in self._db.execute("SELECT doc_id FROM docs")}
            for doc_id in sorted(wanted - held):
                self._add(doc_id)
            for doc_id in sorted(held - wanted):
                self._remove(doc_id)
            self._synced = wanted
            self._pages = self._db.execute("SELECT count(*) FROM pages").fetchone()[0]

    def _add(self, doc_id: str) -> None:
        rows = [
            (spaced(page.text), doc_id, page.page_number)
            for page in load_texts(self.store.folder(doc_id))
            if page.words
        ]
        with self._transaction():  # the document's pages and its record, or nothing
            if self._db.execute("SELECT 1 FROM docs WHERE doc_id = ?", (doc_id,)).fetchone():
                return  # another process added it meanwhile
            self._db.executemany("INSERT INTO pages (text, doc_id, page) VALUES (?, ?, ?)", rows)
            self._count(rows, +1)
            self._db.execute("INSERT INTO docs (doc_id) VALUES (?)", (doc_id,))

    def _remove(self, doc_id: str) -> None:
        with self._transaction():
            rows = self._db.execute("SELECT text FROM pages WHERE doc_id = ?", (doc_id,))
            self._count(rows.fetchall(), -1)
            self._db.execute("DELETE FROM pages WHERE doc_id = ?", (doc_id,))
            self._db.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))

    def _count(self, rows, sign: int) -> None:
        """Add ``sign`` to the page count of every term of each page (``rows[i][0]``: its text)."""
        counts = Counter(
            term for row in rows for term in {fold_term(t) for t in terms_of(row[0], None)}
        )
        self._db.executemany(
            "INSERT INTO df (term, pages) VALUES (?, ?) "
            "ON CONFLICT(term) DO UPDATE SET pages = pages + excluded.pages",
            [(term, sign * n) for term, n in counts.items()],
        )

    @contextlib.contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
