"""Which patches of a page matched which words of the question: similarity-map maths.

Maps come from colpali-engine's interpretability code, through the retriever's family (which
may use its processor's own method, e.g. to re-order tile tokens); geometry comes from the
processor via ``Retriever.patch_grid``. Grids are returned as (rows, cols) = (n_y, n_x): row 0
is the top of the page, column 0 its left edge. Rendering lives in ``rag.view.overlay``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import torch
from PIL import Image

from rag.models.retriever import PatchGrid, Retriever

_NOISE = set(string.punctuation) | {"¿", "¡", "…", "“", "”", "‘", "’", "«", "»"}


@dataclass(frozen=True)
class QueryToken:
    index: int  # row in the query embedding
    text: str  # the token as it reads in the question
    start: int = -1  # where it reads: question[start:end] (-1: unknown)
    end: int = -1


@dataclass(frozen=True)
class QueryWord:
    """A word of the question as a reader sees it ("2024"), made of one or more tokens
    (``2``, ``0``, ``2``, ``4``); its map combines theirs."""

    text: str
    indices: tuple[int, ...]  # rows in the query embedding


@dataclass(frozen=True)
class TokenMap:
    token: QueryToken
    grid: torch.Tensor  # (n_y, n_x) raw similarities


@dataclass(frozen=True)
class PageMaps:
    query: torch.Tensor  # (n_y, n_x): mean of the per-token maps, each scaled to [0, 1]
    tokens: list[TokenMap]


def meaningful_tokens(tokenizer, token_ids: list[int], question: str) -> list[QueryToken]:
    """The query tokens worth a heatmap: those that spell part of ``question`` itself.

    Dropped: special tokens and padding, the processor's query prefix ("Query: ") and
    augmentation tokens, and tokens that are only whitespace or punctuation. Each token's span
    is found by decoding growing prefixes of the ids, which works for any tokenizer.
    """
    special = set(tokenizer.all_special_ids)
    decoded, spans = "", []
    for end in range(1, len(token_ids) + 1):
        text = tokenizer.decode(token_ids[:end], clean_up_tokenization_spaces=False)
        spans.append((len(decoded), len(text)))
        decoded = text
    start = decoded.find(question)
    found = start >= 0
    if not found:  # the tokenizer normalised the text; fall back to the whole sequence
        start, stop = 0, len(decoded)
    else:
        stop = start + len(question)
    tokens = []
    for index, (begin, end) in enumerate(spans):
        if token_ids[index] in special or end <= start or begin >= stop:
            continue
        low, high = max(begin, start), min(end, stop)
        text = decoded[low:high]
        if text.strip() and not all(char in _NOISE for char in text.strip()):
            # Offsets in the question, around the text without its surrounding spaces.
            left = low - start + len(text) - len(text.lstrip()) if found else -1
            right = left + len(text.strip()) if found else -1
            tokens.append(QueryToken(index, text.strip(), left, right))
    return tokens


def words_of(tokens: list[QueryToken], question: str) -> list[QueryWord]:
    """Tokens merged into the words they spell: tokens that touch in ``question`` (no space or
    punctuation mark between them) form one word.

    >>> t = [QueryToken(1, "20", 0, 2), QueryToken(2, "24", 2, 4), QueryToken(3, "sales", 5, 10)]
    >>> [(w.text, w.indices) for w in words_of(t, "2024 sales")]
    [('2024', (1, 2)), ('sales', (3,))]
    """
    words: list[QueryWord] = []
    begins: list[int] = []  # where each word starts in the question
    previous_end = None
    for token in tokens:
        if words and token.start >= 0 and token.start == previous_end:
            text = question[begins[-1] : token.end]
            words[-1] = QueryWord(text, (*words[-1].indices, token.index))
        else:
            words.append(QueryWord(token.text, (token.index,)))
            begins.append(token.start)
        previous_end = token.end if token.start >= 0 else None
    return words


def word_grid(maps: PageMaps, word: QueryWord) -> torch.Tensor:
    """(n_y, n_x) map of one word: the mean of its tokens' maps."""
    grids = [m.grid for m in maps.tokens if m.token.index in word.indices]
    return torch.stack(grids).mean(dim=0)


def similarity_grids(
    page_embedding: torch.Tensor,
    query_embedding: torch.Tensor,
    grid: PatchGrid,
    retriever: Retriever,
) -> torch.Tensor:
    """(q, n_y, n_x) similarity of every query token with every image patch of the page.

    page_embedding: (seq, dim) the page's unpadded embedding; grid.mask selects its patches.
    query_embedding: (q, dim).
    """
    maps = retriever.family.similarity_maps(
        retriever.processor, page_embedding, query_embedding, grid
    )  # (q, n_x, n_y)
    return maps.transpose(1, 2)  # (q, n_y, n_x): rows are the page's vertical axis


def page_maps(
    retriever: Retriever,
    image: Image.Image,
    page_embedding: torch.Tensor,
    query_embedding: torch.Tensor,
    tokens: list[QueryToken],
) -> PageMaps:
    """Per-token and whole-query maps of one page for the given meaningful tokens."""
    grids = similarity_grids(
        page_embedding, query_embedding, retriever.patch_grid(image), retriever
    )
    token_maps = [TokenMap(token, grids[token.index]) for token in tokens]
    chosen = [normalize(item.grid) for item in token_maps] or [normalize(grids.mean(dim=0))]
    return PageMaps(query=torch.stack(chosen).mean(dim=0), tokens=token_maps)


def normalize(grid: torch.Tensor) -> torch.Tensor:
    """Scale a map to [0, 1] (a constant map becomes all zeros)."""
    low, high = grid.min(), grid.max()
    return (grid - low) / (high - low) if high > low else torch.zeros_like(grid)
