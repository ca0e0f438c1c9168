"""Which patches of a page matched which words of the question: similarity-map maths.

Maps come from colpali-engine's interpretability code, through the retriever's family (which
may use its processor's own method, e.g. to re-order tile tokens); geometry comes from the
processor via ``Retriever.patch_grid``. Grids are returned as (rows, cols) = (n_y, n_x): row 0
is the top of the page, column 0 its left edge. Rendering lives in ``rag.view.overlay``.

A map is per query token; a person picks words, so tokens are merged into the words of the
question they spell (``words_of``: Chinese and Japanese split by character, kana runs and
Latin runs whole). Which of them a page's picker offers is ``rag.view.choices``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

import torch
from PIL import Image

from rag.models.retriever import PatchGrid, Retriever

_NOISE = set(string.punctuation) | {"¿", "¡", "…", "“", "”", "‘", "’", "«", "»"}
_UNFINISHED = "\ufffd"  # what a decoder writes for the bytes of a character not yet complete
# Chinese and Japanese scripts by code point: Han (with 々 and 〇), hiragana, katakana (with ー).
_SCRIPT = re.compile(
    "(?P<han>[\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])"
    "|(?P<hiragana>[\u3041-\u309f])|(?P<katakana>[\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f])"
)


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
    augmentation tokens, and tokens that are only whitespace or punctuation (full-width too).
    Each token's span comes from ``token_spans``, which works for any tokenizer; the tokens
    holding the bytes of one character all span it.
    """
    special = set(tokenizer.all_special_ids)
    decoded, spans = token_spans(tokenizer, token_ids)
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
        if not is_noise(text):
            # Offsets in the question, around the text without its surrounding spaces.
            left = low - start + len(text) - len(text.lstrip()) if found else -1
            right = left + len(text.strip()) if found else -1
            tokens.append(QueryToken(index, text.strip(), left, right))
    return tokens


def token_spans(tokenizer, token_ids: list[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded ids and each token's span in it, [begin, end), found by decoding growing
    prefixes of the ids.

    A token may hold only some bytes of a character (byte-level BPE, SentencePiece's byte
    fallback): a prefix ending inside a character decodes to U+FFFD marks (Gemma's turns the
    whole prefix into them). Such a token spans that whole character, so the tokens sharing a
    character overlap and end up in one word.
    """
    decoded = tokenizer.decode(token_ids, clean_up_tokenization_spaces=False)
    spans, done = [], 0  # done: the characters the tokens so far have completed
    for end in range(1, len(token_ids) + 1):
        text = tokenizer.decode(token_ids[:end], clean_up_tokenization_spaces=False)
        partial = not decoded.startswith(text)
        if partial:
            whole = text.rstrip(_UNFINISHED)
            complete = len(whole) if decoded.startswith(whole) else done
        else:
            complete = len(text)
        complete = max(complete, done)
        spans.append((done, complete + partial))
        done = complete
    return decoded, spans


def words_of(tokens: list[QueryToken], question: str) -> list[QueryWord]:
    """Tokens merged into the words they spell, in question order.

    Tokens that share a character are one word. Tokens that touch in ``question`` (no space or
    punctuation mark between them) are one word too, except where Chinese or Japanese script
    starts, ends or changes: each Han character is a word of its own, a run of hiragana or of
    katakana is one word, and a Latin or digit run beside them stays one. Korean keeps the
    words its spaces make. A word's text has no punctuation at its ends.

    >>> t = [QueryToken(1, "20", 0, 2), QueryToken(2, "24", 2, 4), QueryToken(3, "sales", 5, 10)]
    >>> [(w.text, w.indices) for w in words_of(t, "2024 sales")]
    [('2024', (1, 2)), ('sales', (3,))]
    >>> t = [QueryToken(i, c, i, i + 1) for i, c in enumerate("東京のデータ")]
    >>> [w.text for w in words_of(t, "東京のデータ")]
    ['東', '京', 'の', 'データ']
    """
    words: list[QueryWord] = []
    spans: list[tuple[int, int]] = []  # where each word reads in the question (-1: unknown)
    for token in tokens:
        if words and token.start >= 0 and spans[-1][1] >= 0:
            begin, end = spans[-1]
            shares = token.start < end
            if shares or (token.start == end and not is_boundary(question, end)):
                end = max(end, token.end)
                text = trimmed(question[begin:end])
                words[-1] = QueryWord(text, (*words[-1].indices, token.index))
                spans[-1] = (begin, end)
                continue
        words.append(QueryWord(trimmed(token.text), (token.index,)))
        spans.append((token.start, token.end))
    return words


def is_noise(text: str) -> bool:
    """Whether ``text`` is only spaces and punctuation marks (of any script)."""
    return all(char.isspace() or _is_mark(char) for char in text)


def trimmed(text: str) -> str:
    """``text`` without the spaces and punctuation marks at its ends."""
    start, end = 0, len(text)
    while start < end and is_noise(text[start]):
        start += 1
    while end > start and is_noise(text[end - 1]):
        end -= 1
    return text[start:end]


def is_boundary(question: str, at: int) -> bool:
    """Whether a word ends between ``question[at - 1]`` and ``question[at]``: at a space or a
    punctuation mark, where the script changes to or from Han or kana, and between two Han
    characters."""
    before, after = question[at - 1], question[at]
    if is_noise(before + after):
        return True
    left, right = _script(before), _script(after)
    return left != right or left == "han"


def _is_mark(char: str) -> bool:
    return char in _NOISE or unicodedata.category(char).startswith("P")


def _script(char: str) -> str:
    """The script of ``char``: han, hiragana, katakana, or other (Latin, digits, Hangul...)."""
    match = _SCRIPT.match(char)
    return match.lastgroup if match else "other"


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
