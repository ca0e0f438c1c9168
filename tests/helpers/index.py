"""What a restarted app must find in an index folder after any crash: it opens, lists only
whole documents, and every listed page is searchable, by its pictures and by its words."""

from __future__ import annotations

from pathlib import Path

import torch

from rag.index.lexical import LexicalIndex
from rag.index.local import LocalIndex
from rag.index.store import load_texts


def assert_consistent(root: Path, retriever: str, word: str = "Northwind") -> list[str]:
    """Open the index as a restarted app would; every listed document whole and searchable
    (``word`` is on every page of the documents indexed). The listed document ids."""
    index = LocalIndex(root, retriever)
    staging = root / ".staging"
    assert not staging.exists() or not any(staging.iterdir()), "leftovers were not cleaned"
    documents = index.documents()
    for document in documents:
        folder = root / "docs" / document.doc_id
        assert len(list(folder.glob("page-*.png"))) == document.pages
        for number in range(1, document.pages + 1):
            assert torch.isfinite(index.page_embedding(document.doc_id, number)).all()
    if documents:
        query = torch.nn.functional.normalize(torch.randn(5, index.dim), dim=-1)
        hits = index.search(query, k=100)
        assert len(hits) == sum(d.pages for d in documents)
    for entry in (root / "docs").iterdir() if (root / "docs").exists() else []:
        assert (entry / "doc.json").exists(), f"half a document: {entry.name}"
    # The words came with each document, and the word search (caught up) finds exactly these.
    for document in documents:
        texts = load_texts(root / "docs" / document.doc_id)
        assert [t.page_number for t in texts] == list(range(1, document.pages + 1))
    words = LexicalIndex(index.store)  # the word index, as a hybrid search opens it
    try:
        found = {hit.doc_id for hit in words.search(word, 100)}
    finally:
        words.close()
    assert found == {document.doc_id for document in documents}
    return [document.doc_id for document in documents]
