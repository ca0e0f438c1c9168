"""A document's pages through the retriever: batched, prepared ahead of the encoder (or on its
thread), encoded under the models' lock, and handed to a writer behind it.

Pages come from ingestion as they are rendered; their vectors go to the index's staging file
(``rag.index.staged``) on another thread, so the encoder waits neither for poppler nor for
the disk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any, Protocol

import torch
from PIL import Image

from rag.models.retriever import Retriever
from rag.pipelining import Behind, ahead, inline

# Prepared pages held ahead of the encoder at most: a ColQwen2 page's inputs are ~14 MB (fp32
# patches), so a GPU's batches of 64 are prepared two at a time, not one per page worker.
PAGES_AHEAD = 128


class Page(Protocol):
    """A rendered page (``rag.ingest.RenderedPage``)."""

    def open(self) -> Image.Image: ...


def encode_pages(
    pages: Iterator[Page],
    retriever: Retriever,
    workers: int,
    busy: threading.Lock,
    *,
    keep: Callable[[list[torch.Tensor]], None],
    done: Callable[[int], None] | None = None,
) -> list[Page]:
    """Encode ``pages`` in the retriever's batches, holding ``busy`` only while it computes;
    each batch's (n_i, dim) vectors go to ``keep`` on a writer thread, in order, and ``done``
    hears the count of pages encoded so far. Returns the pages, in order. The first error (a
    page that would not render, the encoder, the writer) stops it and is raised."""
    prepared = prepared_batches(pages, retriever, workers)
    encoded: list[Page] = []
    with closing(prepared), Behind(keep, depth=2) as writer:
        for batch, inputs in prepared:
            with busy:
                vectors = retriever.encode(inputs)
            writer.submit(vectors)  # may wait for the disk: not while holding the models
            encoded += batch
            if done:
                done(len(encoded))
        writer.finish()
    return encoded


def prepared_batches(
    pages: Iterator[Page], retriever: Retriever, workers: int
) -> Iterator[tuple[list[Page], Any]]:
    """Batches of pages with their model inputs, in page order: rendered and prepared by the
    processor ahead of the encoder, on ``workers`` threads; or, with one worker and the encoder
    on the CPU, on the encoder's thread (``prepares_inline``)."""
    batches = batched(pages, retriever.batch_size)
    prepare = lambda batch: retriever.preprocess([page.open() for page in batch])  # noqa: E731
    if prepares_inline(workers, retriever.device.type):
        return inline(batches, prepare)
    depth = prepare_depth(workers, retriever.batch_size)
    return ahead(batches, prepare, depth=depth, workers=min(workers, depth))


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


def batched(pages: Iterator[Page], size: int) -> Iterator[list[Page]]:
    """Consecutive pages in lists of ``size`` (the last may be shorter); ``pages`` is closed
    when the batches stop, early or not.

    >>> list(batched(iter(range(5)), 2))
    [[0, 1], [2, 3], [4]]
    """
    batch: list[Page] = []
    try:
        for page in pages:
            batch.append(page)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:  # stopped early: the renderer stops too (its workers, its scratch files)
        close = getattr(pages, "close", None)
        if close is not None:
            close()
