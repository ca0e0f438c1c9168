"""The words of each page, with where they sit: the PDF's own text layer (poppler's pdftotext,
in a child process under the file's time and memory limits), else Tesseract OCR of the page
image (``rag.ingest.ocr``), else nothing (the page is then found by its picture alone).

A page's text never refuses a file: a text layer that is garbage (a font without a Unicode
map reads as symbols), too long, or too slow to read, and OCR that fails or runs out of time,
leave the page without text, with one log line. Boxes are fractions of the page (0 to 1, from
the top-left corner), so they fit any rendering of it.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree

from rag.config import Settings
from rag.ingest import sandbox
from rag.ingest.pdf import password_arguments
from rag.words import MAX_WORDS, Box, PageText, Word, clean_word

logger = logging.getLogger(__name__)

# A text layer whose words are mostly not letters or digits came from a font without a usable
# Unicode map (symbols, private-use code points, replacement characters): OCR reads it instead.
MIN_READABLE = 0.5

_XHTML = "{http://www.w3.org/1999/xhtml}"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def read_text_layer(
    path: Path, pages: int, budget: sandbox.Budget, password: str | bytes | None = None
) -> dict[int, tuple[Word, ...]]:
    """Every page's readable words from the PDF's text layer (pages with none, or with
    garbage, are left out); empty if poppler fails or runs out of ``budget``."""
    arguments = ["-bbox-layout", "-enc", "UTF-8", "-f", "1", "-l", str(pages)]
    arguments += [*password_arguments(password), sandbox.absolute(path), "-"]
    try:
        result = sandbox.run("pdftotext", arguments, budget)
    except sandbox.OverTime:
        logger.warning("%s: its text layer took too long to read: pages found by image", path.name)
        return {}
    if result.returncode != 0:
        logger.warning("%s: its text layer could not be read: pages found by image", path.name)
        return {}
    return {
        number: words
        for number, words in parse_bbox_layout(result.stdout).items()
        if words and readable(words)
    }


def parse_bbox_layout(xhtml: str) -> dict[int, tuple[Word, ...]]:
    """pdftotext ``-bbox-layout`` output -> each page's words (at most ``MAX_WORDS``), boxes
    as fractions of the page. Pieces of one word that poppler splits (at a ligature such as
    "fi" drawn from another font) are joined again: on one line, with no gap between them."""
    try:  # a hostile file's control characters would make the whole document invalid XML
        root = ElementTree.fromstring(_NOT_XML.sub("", xhtml))
    except ElementTree.ParseError:
        return {}
    pages = {}
    for number, page in enumerate(root.iter(f"{_XHTML}page"), start=1):
        width, height = float(page.get("width", 0)), float(page.get("height", 0))
        words: list[Word] = []
        for line in page.iter(f"{_XHTML}line"):
            words += _joined(line, width, height)
            if len(words) >= MAX_WORDS:
                break
        pages[number] = tuple(words[:MAX_WORDS])
    return pages


def _joined(line: ElementTree.Element, width: float, height: float) -> list[Word]:
    words: list[Word] = []
    for element in line.iter(f"{_XHTML}word"):
        text, box = clean_word(element.text or ""), _box(element, width, height)
        if not text or not box:
            continue
        if words and _touching(words[-1].box, box, width, height):
            last = words[-1]
            union = (min(last.box[0], box[0]), min(last.box[1], box[1]), box[2])
            words[-1] = Word(last.text + text, (*union, max(last.box[3], box[3])))
        else:
            words.append(Word(text, box))
    return words


def _touching(left: Box, right: Box, width: float, height: float) -> bool:
    """Whether ``right`` starts where ``left`` ends, on the same baseline: a gap under a tenth
    of the text's height (in points; a space between words is several times wider), and
    vertical centres within half of it (not rotated words stacked on top of each other)."""
    text_height = min(left[3] - left[1], right[3] - right[1]) * height
    gap = (right[0] - left[2]) * width
    drift = abs((left[1] + left[3]) - (right[1] + right[3])) / 2 * height
    return -text_height < gap < 0.1 * text_height and drift < 0.5 * text_height


def _box(element: ElementTree.Element, width: float, height: float) -> Box | None:
    if width <= 0 or height <= 0:
        return None
    try:
        x0, y0, x1, y1 = (float(element.get(k, "nan")) for k in ("xMin", "yMin", "xMax", "yMax"))
    except ValueError:
        return None
    box = (x0 / width, y0 / height, x1 / width, y1 / height)
    if not all(math.isfinite(v) for v in box):
        return None
    return tuple(min(1.0, max(0.0, v)) for v in box)  # type: ignore[return-value]


def readable(words: Iterable[Word]) -> bool:
    """Whether most characters are letters or digits of some script (not a garbled font).

    >>> readable([Word("Revenue", (0, 0, 1, 1)), Word("2024", (0, 0, 1, 1))])
    True
    >>> readable([Word("\\ue001\\ue002\\ue003", (0, 0, 1, 1)), Word("�", (0, 0, 1, 1))])
    False
    """
    characters = "".join(word.text for word in words)
    if not characters:
        return False
    good = sum(unicodedata.category(c)[0] in "LN" for c in characters)
    return good / len(characters) >= MIN_READABLE


def page_texts(
    path: Path,
    pages: int,
    images: dict[int, Path],
    settings: Settings,
    file_budget: sandbox.Budget,
    *,
    password: str | bytes | None = None,
) -> list[PageText]:
    """Every page's words: its text layer, else (Tesseract installed) OCR of its rendered
    ``images[page_number]``, else none; all within ``settings.text_timeout_s`` and what is left
    of the file's ``file_budget``."""
    from rag.ingest import ocr

    seconds = min(settings.text_timeout_s, file_budget.left())
    budget = sandbox.Budget.start(seconds, settings.render_memory_mb)
    layer = read_text_layer(path, pages, budget, password) if seconds > 0 else {}
    texts = []
    languages = ocr.languages_of(settings.ocr_languages)
    can_ocr = len(layer) < pages and ocr.available(languages)
    for number in range(1, pages + 1):
        if number in layer:
            texts.append(PageText(number, layer[number], "layer"))
        elif can_ocr and number in images and budget.left() > 0:
            words = ocr.read_page(images[number], languages, budget)
            texts.append(PageText(number, words, "ocr" if words else "none"))
        else:
            texts.append(PageText(number))
    return texts
