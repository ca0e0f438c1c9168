"""Page budgets for the Idefics3 image processor's tiling (SmolVLM answerers, colSmol and
ColModernVBert retrievers): a page is resized to a longest edge of whole tiles (512 px in the
published checkpoints, ``max_image_size``), cut into tiles of ``image_seq_len`` tokens each, plus
one global view of the page when it takes more than one tile."""

from __future__ import annotations

import math

from PIL import Image


def tile_side(image_processor) -> int:
    return int(image_processor.max_image_size["longest_edge"])


def longest_edge(image_processor) -> int:
    return int(image_processor.size["longest_edge"])


def edge_for_tokens(image_processor, tokens_per_tile: int, max_tokens: int) -> int:
    """The longest edge that holds any page to ``max_tokens``: ``n`` tiles a side, where an
    ``n`` x ``n`` page and its global view fit (one tile at least), never above the
    processor's own."""
    tiles = max_tokens // tokens_per_tile
    side = max(1, math.isqrt(max(tiles - 1, 1)))
    return min(longest_edge(image_processor), side * tile_side(image_processor))


def fitted(image: Image.Image, max_pixels: int, image_processor) -> Image.Image:
    """``image`` resized (aspect kept) to the longest edge of whole tiles at which it has at
    most ``max_pixels`` pixels (one tile at least, the processor's own edge at most)."""
    tile, cap = tile_side(image_processor), longest_edge(image_processor)
    width, height = image.size
    ratio = min(width, height) / max(width, height)
    edge = tile * max(1, int(math.sqrt(max_pixels / ratio) // tile))
    edge = min(edge, cap)
    scale = edge / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)
