"""Tesseract OCR of a page image, for pages with no text layer (scans, photos): the words and
their boxes, from Tesseract's TSV output.

Tesseract runs in a child process under the same launcher and limits as poppler (the file's
time budget, its memory cap, killed with the app). Where Tesseract is not installed, pages
without a text layer are found by their picture alone, and the log says so once.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import shutil
import subprocess
from pathlib import Path

from rag.ingest import sandbox
from rag.words import MAX_WORDS, Word, clean_word

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 30  # Tesseract's per-word confidence (0-100): below it, a guess
_warned: set[str] = set()


@functools.cache
def installed_languages() -> str:
    """Tesseract's installed language packs as one ``-l`` value, English first (``eng+deu``);
    "" without Tesseract. RAG_OCR_LANGUAGES="" means these."""
    if not tesseract():
        return ""
    try:
        listed = subprocess.run(
            ["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.splitlines()[1:]  # the first line is a heading
    except (OSError, subprocess.TimeoutExpired):
        return "eng"
    packs = sorted({p.strip() for p in listed if p.strip() and p.strip() != "osd"})
    return "+".join(sorted(packs, key=lambda p: p != "eng")) or "eng"


def languages_of(setting: str) -> str:
    """RAG_OCR_LANGUAGES, or every installed pack when it is empty."""
    return setting.strip() or installed_languages() or "eng"


def tesseract() -> str | None:
    """Where Tesseract is installed, if it is."""
    return shutil.which("tesseract")


def available(languages: str) -> bool:
    """Whether Tesseract is installed (one log line the first time it is not)."""
    if tesseract():
        return True
    if "missing" not in _warned:
        _warned.add("missing")
        logger.warning(
            "tesseract is not installed: pages without a text layer are found by image only "
            "(apt-get install tesseract-ocr, and tesseract-ocr-LANG for %s)",
            languages,
        )
    return False


def read_page(image: Path, languages: str, budget: sandbox.Budget) -> tuple[Word, ...]:
    """The words Tesseract reads on ``image`` in ``languages`` (``eng+deu``), boxes as
    fractions of the image; empty when it fails, finds nothing, or runs out of ``budget``."""
    arguments = [str(image), "stdout", "-l", languages, "--psm", "3", "tsv"]
    try:
        result = sandbox.run("tesseract", arguments, budget)
    except sandbox.OverTime:
        logger.warning("%s: OCR ran out of time: the page is found by image only", image.name)
        return ()
    except sandbox.ToolMissing as error:  # removed since ``available`` looked
        logger.warning("%s: %s: the page is found by image only", image.name, error)
        return ()
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["?"])[-1][:200]
        logger.warning("%s: OCR failed (%s): found by image only", image.name, reason)
        return ()
    return parse_tsv(result.stdout)


def parse_tsv(tsv: str) -> tuple[Word, ...]:
    """Tesseract TSV -> confident words, boxes as fractions of the page (its level-1 row).

    >>> row = "\\t".join(["level", "page_num", "block_num", "par_num", "line_num", "word_num",
    ...                    "left", "top", "width", "height", "conf", "text"])
    >>> page = "1\\t1\\t0\\t0\\t0\\t0\\t0\\t0\\t200\\t100\\t-1\\t"
    >>> word = "5\\t1\\t1\\t1\\t1\\t1\\t20\\t10\\t40\\t20\\t91.5\\tInvoice"
    >>> parse_tsv("\\n".join([row, page, word]))
    (Word(text='Invoice', box=(0.1, 0.1, 0.3, 0.3)),)
    """
    rows = list(csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE))
    page = next((r for r in rows if r.get("level") == "1"), None)
    if page is None:
        return ()
    width, height = float(page["width"]), float(page["height"])
    words = []
    for row in rows:
        if row.get("level") != "5" or float(row.get("conf") or -1) < MIN_CONFIDENCE:
            continue
        text = clean_word(row.get("text") or "")
        if not text or width <= 0 or height <= 0:
            continue
        left, top = float(row["left"]), float(row["top"])
        right, bottom = left + float(row["width"]), top + float(row["height"])
        words.append(Word(text, (left / width, top / height, right / width, bottom / height)))
        if len(words) >= MAX_WORDS:
            break
    return tuple(words)
