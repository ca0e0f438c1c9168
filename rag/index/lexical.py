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
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.text import load_texts

if TYPE_CHECKING:
    from rag.index.store import DocumentStore

FILE = "lexical.sqlite"
MAX_TERMS = 64  # of a question: more is not a question
_CJK = re.compile(
    "([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002fa1f])"
)
_WORD = re.compile(r"\w+", re.UNICODE)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS pages USING fts5("
    "text, doc_id UNINDEXED, page UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')",
)


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
        # Autocommit, with explicit BEGIN IMMEDIATE: another process's writer waits its turn.
        self._db = sqlite3.connect(
            store.root / FILE, timeout=30, check_same_thread=False, isolation_level=None
        )
        for statement in _SCHEMA:
            self._db.execute(statement)

    def search(self, question: str, k: int, scope: Collection[str] | None = None) -> list[TextHit]:
        """The ``k`` pages whose words best match ``question`` (BM25), best first; within
        ``scope`` (document ids) if given. Pages that share no word with it are not returned."""
        terms = terms_of(question)
        if not terms or k <= 0 or (scope is not None and not scope):
            return []
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        query = "SELECT doc_id, page, bm25(pages) FROM pages WHERE pages MATCH ?"
        arguments: list = [match]
        if scope is not None:
            query += " AND doc_id IN (SELECT value FROM json_each(?))"
            arguments.append(json.dumps(sorted(set(scope))))
        query += " ORDER BY bm25(pages) LIMIT ?"
        arguments.append(k)
        self.sync()
        with self._lock:
            rows = self._db.execute(query, arguments).fetchall()
        return [TextHit(doc_id, int(page), -float(score)) for doc_id, page, score in rows]

    def sync(self) -> None:
        """Add the words of committed documents the index lacks; remove those of documents that
        are gone."""
        wanted = {document.doc_id for document in self.store.documents()}
        with self._lock:
            held = {row[0] for row in self._db.execute("SELECT doc_id FROM docs")}
            for doc_id in sorted(wanted - held):
                self._add(doc_id)
            for doc_id in sorted(held - wanted):
                self._remove(doc_id)

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
            self._db.execute("INSERT INTO docs (doc_id) VALUES (?)", (doc_id,))

    def _remove(self, doc_id: str) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM pages WHERE doc_id = ?", (doc_id,))
            self._db.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))

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
