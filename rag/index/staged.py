"""Page vectors staged on disk as they are computed, so that no document sits in memory whole.

``StagedPages`` appends each batch of pages to one raw file (float32, exactly as the encoder
gave them) and reads pages back one at a time or a few thousand tokens at a time. It is a
``Sequence`` of (n_i, dim) tensors, so an index's ``add`` takes it like a list: a 500-page
document costs the memory of a chunk, not of 500 pages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

CHUNK_TOKENS = 1 << 16  # tokens read back per chunk: 32 MB of 128-d float32


class StagedPages(Sequence[torch.Tensor]):
    """Pages appended to ``path`` (created empty); one writer at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.write_bytes(b"")
        self.lengths: list[int] = []
        self.offsets: list[int] = [0]  # page i owns tokens offsets[i]:offsets[i + 1]
        self.dim: int | None = None

    def append(self, pages: list[torch.Tensor]) -> None:
        """Write (n_i, dim) pages at the end of the file."""
        for page in pages:
            if page.ndim != 2 or (self.dim is not None and page.shape[1] != self.dim):
                raise ValueError(f"page vectors {tuple(page.shape)} are not (n, {self.dim})")
            self.dim = int(page.shape[1])
        with self.path.open("ab") as handle:
            for page in pages:
                handle.write(page.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        for page in pages:
            self.lengths.append(int(page.shape[0]))
            self.offsets.append(self.offsets[-1] + int(page.shape[0]))

    @property
    def tokens(self) -> int:
        return self.offsets[-1]

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return [self[i] for i in range(*item.indices(len(self)))]
        if item < 0:
            item += len(self)
        if not 0 <= item < len(self):
            raise IndexError(f"page {item} of {len(self)}")
        return self._rows(self.offsets[item], self.offsets[item + 1])

    def chunks(self, max_tokens: int | None = None) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Consecutive whole pages of about ``max_tokens`` (default ``CHUNK_TOKENS``) tokens, at
        least one page each: (their lengths, their vectors concatenated), one read each."""
        max_tokens = max_tokens or CHUNK_TOKENS
        first = 0
        while first < len(self):
            last = first + 1
            while last < len(self) and self.offsets[last] - self.offsets[first] < max_tokens:
                last += 1
            yield self.lengths[first:last], self._rows(self.offsets[first], self.offsets[last])
            first = last

    def _rows(self, start: int, stop: int) -> torch.Tensor:
        assert self.dim is not None
        array = np.fromfile(
            self.path, np.float32, count=(stop - start) * self.dim, offset=start * self.dim * 4
        )
        return torch.from_numpy(array.reshape(stop - start, self.dim))


def page_lengths(pages: Sequence[torch.Tensor]) -> list[int]:
    """Tokens per page, without reading staged pages back."""
    if isinstance(pages, StagedPages):
        return list(pages.lengths)
    return [int(page.shape[0]) for page in pages]


def page_chunks(
    pages: Sequence[torch.Tensor], max_tokens: int | None = None
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Any sequence of pages, a few at a time: (their lengths, their vectors concatenated as
    float32 on the CPU), about ``max_tokens`` (default ``CHUNK_TOKENS``) tokens per chunk.
    Staged pages are read a chunk at a time, not a page at a time."""
    if isinstance(pages, StagedPages):
        yield from pages.chunks(max_tokens)
        return
    max_tokens = max_tokens or CHUNK_TOKENS
    batch: list[torch.Tensor] = []
    for page in pages:
        batch.append(page.detach().to("cpu", torch.float32))
        if sum(p.shape[0] for p in batch) >= max_tokens:
            yield [p.shape[0] for p in batch], torch.cat(batch)
            batch = []
    if batch:
        yield [p.shape[0] for p in batch], torch.cat(batch)
