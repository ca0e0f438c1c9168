"""Page embeddings made up for the index tests, and adding them to an index as a document (with
a white picture for each page), as the pipeline would after encoding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from rag.index import Document, Index

DIM = 64  # binary mode packs 64 dimensions per word


def pages(
    seed: int, count: int, dim: int = DIM, tokens: int = 10, step: int = 3
) -> list[torch.Tensor]:
    """``count`` pages of unit vectors, page ``i`` of ``tokens + step * i`` tokens; the same
    ``seed`` gives the same pages."""
    generator = torch.Generator().manual_seed(seed)
    made = [torch.randn(tokens + step * i, dim, generator=generator) for i in range(count)]
    return [torch.nn.functional.normalize(page, dim=-1) for page in made]


def add(
    index: Index,
    doc_id: str,
    embeddings: Sequence[torch.Tensor],
    added: str = "2026-01-01",
    name: str = "",
) -> Document:
    """``embeddings`` committed as document ``doc_id`` (``name`` defaults to ``doc_id.pdf``)."""
    document = Document(doc_id, name or f"{doc_id}.pdf", len(embeddings), added)
    with index.staging() as staged:
        for number in range(1, len(embeddings) + 1):
            Image.new("RGB", (20, 30), "white").save(staged / f"page-{number:04d}.png")
        assert index.add(document, staged, embeddings)
    return document
