"""Heatmap rendering: a (rows, cols) map drawn over its page image as a PNG-ready image."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from rag.view.heatmaps import normalize

ALPHA = 0.55  # map opacity at full strength; weak patches stay see-through


# Matched words: a cyan frame, distinct from the heatmap's black-to-yellow scale.
BOX_LINE, BOX_FILL = (0, 170, 255, 255), (0, 170, 255, 60)
# Evidence boxes (rag.view.evidence): a green frame twice as thick, apart from both.
EVIDENCE_LINE, EVIDENCE_FILL, EVIDENCE_WIDTH = (0, 200, 83, 255), (0, 200, 83, 40), 2
COLORMAP = "inferno"  # dark (weak match) to bright yellow (strong): readable over white pages


def render_overlay(
    page: Image.Image, grid: torch.Tensor, colormap: str = COLORMAP, opacity: float = ALPHA
) -> Image.Image:
    """Blend ``grid`` (n_y, n_x) over ``page`` at ``opacity`` (at full strength; 0 leaves the
    page as it is): each cell covers its share of the page, and cell (0, 0) its top-left
    corner. Returns an RGB image the size of ``page``."""
    from matplotlib import colormaps

    page = page.convert("RGB")
    strength = normalize(grid.float()).numpy()  # (n_y, n_x) in [0, 1]
    colours = colormaps[colormap](strength)[..., :3]  # (n_y, n_x, 3)
    rgba = np.concatenate([colours, strength[..., None] * opacity], axis=-1)
    small = Image.fromarray((rgba * 255).astype(np.uint8))  # 4 channels: RGBA
    layer = small.resize(page.size, resample=Image.Resampling.BICUBIC)
    return Image.alpha_composite(page.convert("RGBA"), layer).convert("RGB")


def legend_colours(steps: int = 8, colormap: str = COLORMAP) -> list[str]:
    """The colour scale from weak to strong match, as ``#rrggbb`` stops (for a legend)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    scale = colormaps[colormap]
    return [to_hex(scale(i / (steps - 1))) for i in range(steps)]


def draw_boxes(
    page: Image.Image,
    boxes: list[tuple[float, float, float, float]],
    outline: tuple[int, ...] = BOX_LINE,
    fill: tuple[int, ...] = BOX_FILL,
    width: int = 1,
) -> Image.Image:
    """``page`` with each box (x0, y0, x1, y1 as fractions of the page) outlined in
    ``outline`` (``width`` times the usual line) and lightly filled with ``fill``: where the
    question's words are. Returns an RGB image the size of ``page``."""
    from PIL import ImageDraw

    page = page.convert("RGBA")
    layer = Image.new("RGBA", page.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = page.size
    line = max(2, round(min(w, h) / 400)) * width
    for x0, y0, x1, y1 in boxes:
        corners = (x0 * w - line, y0 * h - line, x1 * w + line, y1 * h + line)
        draw.rectangle(corners, fill=fill, outline=outline, width=line)
    return Image.alpha_composite(page, layer).convert("RGB")
