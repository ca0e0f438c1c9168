"""Evidence boxes: the regions of a retrieved page that support the answer, found two ways and
merged.

- By picture: each content word of the question has a similarity map over the page's patch
  grid (``rag.view.heatmaps.word_grid``, (n_y, n_x), geometry from the processor). Its strong
  patches (within ``STRONG`` of the map's peak, measured from the map's median) form connected
  components (8-neighbours); each component's cells make a box. A word whose map does not stand
  out (``contrast`` under ``MIN_CONTRAST``: noise, or a flat map) gives none.
- By words: the page's words (text layer or OCR, ``rag.words.PageText``) that match a content
  word of the question, as search compares them (``rag.terms``), neighbours on a line joined.

A picture box that overlaps or touches (within one patch) matched page words snaps to them: the
box becomes those words' box, found by both. What is left of either kind stays on its own.
Boxes are page-relative ``(x0, y0, x1, y1)`` in [0, 1] from the top-left corner, like
``rag.words.Box``, so they fit any rendering of the page.

``box_overlap`` scores predicted boxes against reference boxes (the eval report);
``reference_boxes`` reads ViDoRe V3's annotations into the same page-relative boxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from rag.terms import page_terms, question_terms
from rag.words import Box, PageText

STRONG = 0.75  # a patch is strong above median + STRONG * (peak - median) of its word's map
# How far a map's peak stands out: (peak - median) / (peak - min). A map of noise sits near 0.5
# (its median halfway), a word found in one place near 1; under this, the word is not located.
MIN_CONTRAST = 0.6
MAX_SHARE = 0.25  # strong patches over more than this share of the page locate nothing
JOIN_GAP = 2.5  # matched words on a line join across this many line heights (a short word)
LIMIT = 5  # boxes per page: the few a reader looks at
# Scores: half for the page's words matching there, half for how strongly the picture does.
WORDS_WEIGHT = 0.5

Source = Literal["words", "picture", "both"]


@dataclass(frozen=True)
class EvidenceBox:
    """A region of a page that supports the answer.

    box: page-relative (x0, y0, x1, y1) in [0, 1]; words: the question's words found there
    (as asked); score in [0, 1] (``WORDS_WEIGHT`` for matching page words, the rest for the
    picture's match); source: found by the page's words, its picture, or both."""

    box: Box
    words: tuple[str, ...]
    score: float
    source: Source

    def as_json(self) -> dict:
        """What the CLI and the API return: ``{"box": [x0, y0, x1, y1], "words", "score",
        "source"}``, rounded to 4 places."""
        return {
            "box": [round(v, 4) for v in self.box],
            "words": list(self.words),
            "score": round(self.score, 4),
            "source": self.source,
        }


# -- picture: strong patches of each word's map ----------------------------------------------


def contrast(grid: np.ndarray) -> float:
    """How far the peak of ``grid`` stands out from its median, as a share of its range (0
    for a flat map).

    >>> contrast(np.array([[0.0, 0.0, 0.0, 1.0]]))
    1.0
    >>> contrast(np.ones((2, 3)))
    0.0
    """
    low, high, median = float(grid.min()), float(grid.max()), float(np.median(grid))
    return (high - median) / (high - low) if high > low else 0.0


def strong_patches(grid: np.ndarray) -> np.ndarray:
    """(n_y, n_x) bool: the patches of ``grid`` (n_y, n_x) at least ``STRONG`` of the way from
    its median to its peak; none if the map does not stand out (``MIN_CONTRAST``) or lights
    more than ``MAX_SHARE`` of the page.

    >>> strong_patches(np.array([[0, 0.1, 0.9, 0], [0, 1.0, 0, 0]])).astype(int).tolist()
    [[0, 0, 1, 0], [0, 1, 0, 0]]
    """
    if contrast(grid) < MIN_CONTRAST:
        return np.zeros(grid.shape, dtype=bool)
    median, high = float(np.median(grid)), float(grid.max())
    strong = grid >= median + STRONG * (high - median)
    return strong if strong.mean() <= MAX_SHARE else np.zeros(grid.shape, dtype=bool)


def components(mask: np.ndarray) -> list[tuple[slice, slice]]:
    """The (rows, cols) slices bounding each 8-connected component of ``mask`` (n_y, n_x),
    in label order (top to bottom by first cell).

    >>> m = np.array([[1, 0, 0, 0], [0, 1, 0, 1]], dtype=bool)
    >>> [(r.start, r.stop, c.start, c.stop) for r, c in components(m)]
    [(0, 2, 0, 2), (1, 2, 3, 4)]
    """
    from scipy import ndimage  # colpali-engine's dependency; loaded only when boxes are asked

    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
    return [found for found in ndimage.find_objects(labels) if found is not None]


def cells_box(rows: slice, cols: slice, shape: tuple[int, int]) -> Box:
    """The page-relative box of grid cells ``rows`` x ``cols`` on an (n_y, n_x) grid that
    covers the whole page.

    >>> cells_box(slice(1, 3), slice(0, 2), (4, 5))
    (0.0, 0.25, 0.4, 0.75)
    """
    n_y, n_x = shape
    return (cols.start / n_x, rows.start / n_y, cols.stop / n_x, rows.stop / n_y)


def picture_boxes(word: str, grid: np.ndarray) -> list[EvidenceBox]:
    """The boxes where ``word``'s map ``grid`` (n_y, n_x, raw similarities) is strong, each
    scored by the map's contrast times the mean strength of its patches (0 to 1 from median to
    peak)."""
    strong = strong_patches(grid)
    if not strong.any():
        return []
    median, high = float(np.median(grid)), float(grid.max())
    scale = contrast(grid) / (high - median)
    boxes = []
    for rows, cols in components(strong):
        patch = grid[rows, cols][strong[rows, cols]]
        score = float((patch - median).mean()) * scale
        box = cells_box(rows, cols, grid.shape)
        boxes.append(EvidenceBox(box, (word,), score, "picture"))
    return boxes


# -- words: the page's words that match the question's -------------------------------------


@dataclass(frozen=True)
class Matched:
    box: Box
    words: tuple[str, ...]  # the question's words this page word matches


def matched_words(page: PageText, words: Iterable[str]) -> list[Matched]:
    """The page's words that match any of ``words`` (the question's content words), each with
    the ones it matches (a page word matches when one of its terms is one of a word's terms)."""
    terms = {word: set(question_terms(word, limit=None)) for word in words}
    found = []
    for item in page.words:
        own = set(page_terms(item.text))
        hits = tuple(word for word, wanted in terms.items() if own & wanted)
        if hits:
            found.append(Matched(item.box, hits))
    return found


def same_line(a: Box, b: Box) -> bool:
    """Whether word boxes ``a`` and ``b`` sit on one line, side by side: their heights overlap
    by half the smaller one and the gap between them is at most ``JOIN_GAP`` line heights.

    >>> same_line((0.1, 0.1, 0.2, 0.12), (0.21, 0.1, 0.3, 0.12))
    True
    >>> same_line((0.1, 0.1, 0.2, 0.12), (0.1, 0.2, 0.3, 0.22))
    False
    """
    height = min(a[3] - a[1], b[3] - b[1])
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    gap = max(a[0], b[0]) - min(a[2], b[2])
    line = max(a[3] - a[1], b[3] - b[1])
    return height > 0 and overlap >= height / 2 and gap <= JOIN_GAP * line


def lines(matched: list[Matched]) -> list[Matched]:
    """Matched words joined with their neighbours on a line, in reading order."""
    joined: list[Matched] = []
    for item in sorted(matched, key=lambda m: (m.box[1], m.box[0])):
        near = next((i for i, j in enumerate(joined) if same_line(j.box, item.box)), None)
        if near is None:
            joined.append(item)
        else:
            old = joined[near]
            joined[near] = Matched(union(old.box, item.box), ordered(old.words + item.words))
    return joined


# -- merging --------------------------------------------------------------------------------


def union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def grown(box: Box, dx: float, dy: float) -> Box:
    return (box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy)


def touches(a: Box, b: Box) -> bool:
    """Whether boxes ``a`` and ``b`` overlap or share an edge."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def ordered(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


def snap(found: EvidenceBox, near: list[Matched]) -> EvidenceBox:
    """A picture box snapped to the page words ``near`` it: their box, found by both."""
    box = near[0].box
    for item in near[1:]:
        box = union(box, item.box)
    words = ordered(found.words + tuple(w for item in near for w in item.words))
    score = WORDS_WEIGHT + (1 - WORDS_WEIGHT) * found.score
    return EvidenceBox(box, words, score, "both")


def merged(boxes: list[EvidenceBox]) -> list[EvidenceBox]:
    """``boxes`` with every two that overlap made one: their union, words, best score, and
    "both" where the sources differ."""
    boxes = list(boxes)
    changed = True
    while changed:
        changed = False
        for i, a in enumerate(boxes):
            j = next((j for j in range(i + 1, len(boxes)) if overlaps(a.box, boxes[j].box)), None)
            if j is not None:
                b = boxes.pop(j)
                source = a.source if a.source == b.source else "both"
                words = ordered(a.words + b.words)
                boxes[i] = EvidenceBox(union(a.box, b.box), words, max(a.score, b.score), source)
                changed = True
                break
    return boxes


def overlaps(a: Box, b: Box) -> bool:
    """Whether boxes ``a`` and ``b`` share some area (not only an edge)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def clipped(found: EvidenceBox) -> EvidenceBox:
    box = tuple(min(1.0, max(0.0, float(v))) for v in found.box)
    return replace(found, box=box, score=min(1.0, max(0.0, found.score)))


def evidence_boxes(
    word_maps: Mapping[str, np.ndarray], page: PageText, limit: int = LIMIT
) -> list[EvidenceBox]:
    """The regions of a page that support the answer, best first, at most ``limit``.

    word_maps: each content word of the question (as asked) -> its (n_y, n_x) similarity map
    over the page's patch grid (row 0 the top of the page; every map of one page has one
    shape). page: the page's words and their page-relative boxes (none: picture boxes alone).
    A picture box touching matched page words within one patch snaps to them ("both", scored
    ``WORDS_WEIGHT`` plus the rest times its picture score); matched page words left alone are
    "words" (``WORDS_WEIGHT``), picture boxes left alone "picture" (their picture score times
    ``1 - WORDS_WEIGHT``). Boxes that then overlap are one.
    """
    words = list(word_maps)
    matched = lines(matched_words(page, words))
    used: set[int] = set()
    found: list[EvidenceBox] = []
    for word, given in word_maps.items():
        grid = np.asarray(given, dtype=np.float64)
        dx, dy = 1 / grid.shape[1], 1 / grid.shape[0]
        for box in picture_boxes(word, grid):
            near = [i for i, m in enumerate(matched) if touches(grown(box.box, dx, dy), m.box)]
            if near:
                used.update(near)
                found.append(snap(box, [matched[i] for i in near]))
            else:
                weight = 1 - WORDS_WEIGHT
                found.append(replace(box, score=weight * box.score))
    found += [
        EvidenceBox(m.box, m.words, WORDS_WEIGHT, "words")
        for i, m in enumerate(matched)
        if i not in used
    ]
    ranked = sorted(merged(found), key=lambda e: (-e.score, e.box[1], e.box[0]))
    return [clipped(e) for e in ranked[: max(limit, 0)]]


# -- measuring against reference boxes -------------------------------------------------------


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 if they do not overlap).

    >>> iou((0, 0, 2, 2), (1, 1, 3, 3))  # 1 shared of 4 + 4 - 1
    0.14285714285714285
    >>> iou((0, 0, 1, 1), (0, 0, 1, 1)), iou((0, 0, 1, 1), (2, 2, 3, 3))
    (1.0, 0.0)
    """
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    shared = width * height
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - shared
    return shared / area


def box_overlap(predicted: list[Box], reference: list[Box]) -> float:
    """How well ``predicted`` boxes cover ``reference`` boxes: the mean, over the reference
    boxes, of the best IoU any predicted box has with it (0 to 1; 0 when nothing is
    predicted). Extra predicted boxes cost nothing here; each reference box counts once.
    Raises ValueError without reference boxes (nothing to measure: leave the page out).

    >>> box_overlap([(0, 0, 1, 1)], [(0, 0, 1, 1), (0, 0, 2, 2)])  # (1 + 1/4) / 2
    0.625
    >>> box_overlap([], [(0, 0, 1, 1)])
    0.0
    """
    if not reference:
        raise ValueError("no reference boxes to measure against")
    return sum(max((iou(p, r) for p in predicted), default=0.0) for r in reference) / len(reference)


_CORNERS = (("x1", "y1", "x2", "y2"), ("x_min", "y_min", "x_max", "y_max"))
_KEYS = ("bounding_boxes", "bboxes", "bbox", "boxes")


def reference_boxes(record: Mapping, size: tuple[int, int] | None = None) -> list[Box]:
    """A ViDoRe V3 annotation's evidence boxes, page-relative.

    ``record``: one annotated (query, page) row; its boxes under ``bounding_boxes`` (or
    ``bboxes``, ``bbox``, ``boxes``), each a mapping with corners ``x1, y1, x2, y2`` (or
    ``x_min, ...``), or ``x, y, width, height``, or a sequence ``[x1, y1, x2, y2]``. ``size``:
    the page image's (width, height) in pixels, when the boxes are in pixels; without it,
    boxes must already be fractions of the page (all values within [0, 1]). Boxes of no area
    (a few released ones are) are dropped; a missing field gives none.

    >>> reference_boxes({"bounding_boxes": [{"x1": 10, "y1": 20, "x2": 60, "y2": 120}]},
    ...                 size=(100, 200))
    [(0.1, 0.1, 0.6, 0.6)]
    >>> reference_boxes({"bounding_boxes": [[0.5, 0.5, 0.5, 0.9]]})  # no area
    []
    """
    raw = next((record[key] for key in _KEYS if record.get(key) is not None), [])
    if isinstance(raw, Mapping) or (raw and not isinstance(raw[0], (Mapping, list, tuple))):
        raw = [raw]  # a single box
    boxes = []
    for item in raw:
        x0, y0, x1, y1 = (float(v) for v in corners(item))
        if size:
            x0, x1, y0, y1 = x0 / size[0], x1 / size[0], y0 / size[1], y1 / size[1]
        elif max(x0, y0, x1, y1) > 1:
            raise ValueError(f"box {item!r} is in pixels: give the page's size")
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    return boxes


def corners(item) -> tuple:
    """x0, y0, x1, y1 of one annotated box (see ``reference_boxes``)."""
    if not isinstance(item, Mapping):
        return tuple(item)[:4]
    for names in _CORNERS:
        if all(name in item for name in names):
            return tuple(item[name] for name in names)
    if all(name in item for name in ("x", "y", "width", "height")):
        x, y = item["x"], item["y"]
        return x, y, x + item["width"], y + item["height"]
    raise ValueError(f"not a box: {item!r}")
