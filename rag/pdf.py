"""PDF file -> page images, through poppler (pdf2image).

Pages are rendered a few at a time (``Settings.render_chunk_pages``) and written to disk as
they come, so a 500-page PDF never holds all its pages in memory. Every way a file can fail
(not a PDF, encrypted, corrupt, empty, too large) raises a typed ``PdfError`` whose message
is one line naming the file.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from rag.config import Settings
from rag.errors import (
    CorruptPdfError,
    EmptyPdfError,
    EncryptedPdfError,
    NotAPdfError,
    PdfTooLargeError,
)

logger = logging.getLogger(__name__)

# poppler gives up on a broken file quickly; these bound a pathological one.
INFO_TIMEOUT_S = 60
RENDER_TIMEOUT_S = 300
_PAGE_SIZE = re.compile(r"^Page\s+(\d+) size$")
_POINTS_PER_INCH = 72.0


@dataclass(frozen=True)
class PdfInfo:
    """What poppler reports about a PDF: page count and each page's size in points."""

    pages: int
    page_sizes: tuple[tuple[float, float], ...]  # (width, height) in points, one per page


@dataclass(frozen=True)
class RenderedPage:
    page_number: int  # 1-based
    path: Path
    width: int
    height: int


def inspect_pdf(path: Path, settings: Settings) -> PdfInfo:
    """Validate ``path`` as a renderable PDF within the limits; raise a ``PdfError`` if not."""
    name = path.name
    if not path.is_file():
        raise NotAPdfError(f"{name}: no such file")
    size_mb = path.stat().st_size / 2**20
    if size_mb > settings.max_file_mb:
        raise PdfTooLargeError(
            f"{name}: {size_mb:.0f} MB is over the {settings.max_file_mb} MB limit"
        )
    if path.stat().st_size == 0:
        raise EmptyPdfError(f"{name}: the file is empty")
    with path.open("rb") as handle:
        if b"%PDF-" not in handle.read(1024):
            raise NotAPdfError(f"{name}: not a PDF file")
    # Per-page sizes for at most max_pages + 1 pages: enough to refuse a longer PDF.
    info = _pdfinfo(path, last_page=settings.max_pages + 1)
    pages = int(info.get("Pages", 0))
    if pages == 0:
        raise EmptyPdfError(f"{name}: the PDF has no pages")
    if pages > settings.max_pages:
        raise PdfTooLargeError(f"{name}: {pages} pages is over the {settings.max_pages}-page limit")
    return PdfInfo(pages=pages, page_sizes=_page_sizes(info, pages))


def render_pages(
    path: Path, out_dir: Path, settings: Settings, info: PdfInfo | None = None
) -> Iterator[RenderedPage]:
    """Render every page to ``out_dir/page-NNNN.png``, yielding each as soon as it is on disk.

    Each page gets ``settings.dpi`` unless that would exceed ``settings.max_page_pixels``,
    in which case its DPI is lowered to fit, so a poster-sized page cannot exhaust memory.
    """
    info = info or inspect_pdf(path, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    for first, last, dpi in _render_chunks(info, settings):
        for offset, image in enumerate(_convert(path, first, last, dpi)):
            yield _save(image, first + offset, out_dir)


def page_dpi(width_pt: float, height_pt: float, settings: Settings) -> int:
    """The DPI for one page: ``settings.dpi``, lowered so the render fits the pixel cap."""
    area_in2 = max(width_pt / _POINTS_PER_INCH * height_pt / _POINTS_PER_INCH, 1e-6)
    fitting = math.floor(math.sqrt(settings.max_page_pixels / area_in2))
    return max(1, min(settings.dpi, fitting))


def _render_chunks(info: PdfInfo, settings: Settings) -> Iterator[tuple[int, int, int]]:
    """(first, last, dpi) runs of at most ``render_chunk_pages`` pages sharing one DPI."""
    dpis = [page_dpi(w, h, settings) for w, h in info.page_sizes]
    first = 1
    while first <= info.pages:
        last = first
        while (
            last < info.pages
            and last - first + 1 < settings.render_chunk_pages
            and dpis[last] == dpis[first - 1]
        ):
            last += 1
        yield first, last, dpis[first - 1]
        first = last + 1


def _convert(path: Path, first: int, last: int, dpi: int) -> list[Image.Image]:
    from pdf2image import convert_from_path
    from pdf2image.exceptions import PDFPopplerTimeoutError

    try:
        images = convert_from_path(
            path, dpi=dpi, first_page=first, last_page=last, timeout=RENDER_TIMEOUT_S
        )
    except PDFPopplerTimeoutError:
        raise CorruptPdfError(f"{path.name}: rendering pages {first}-{last} timed out") from None
    if len(images) != last - first + 1:
        raise CorruptPdfError(f"{path.name}: pages {first}-{last} could not be rendered")
    return images


def _save(image: Image.Image, page_number: int, out_dir: Path) -> RenderedPage:
    image = image.convert("RGB")
    target = out_dir / f"page-{page_number:04d}.png"
    image.save(target, optimize=False)
    return RenderedPage(page_number, target, image.width, image.height)


def _pdfinfo(path: Path, last_page: int) -> dict[str, object]:
    from pdf2image import pdfinfo_from_path
    from pdf2image.exceptions import (
        PDFInfoNotInstalledError,
        PDFPageCountError,
        PDFPopplerTimeoutError,
    )

    try:
        return pdfinfo_from_path(path, timeout=INFO_TIMEOUT_S, first_page=1, last_page=last_page)
    except PDFInfoNotInstalledError:
        raise RuntimeError("poppler is not installed: apt-get install -y poppler-utils") from None
    except PDFPopplerTimeoutError:
        raise CorruptPdfError(f"{path.name}: reading the PDF timed out") from None
    except PDFPageCountError as error:
        raise _classify(path.name, str(error)) from None


def _classify(name: str, poppler_message: str) -> Exception:
    lowered = poppler_message.lower()
    if "password" in lowered or "encrypt" in lowered:
        return EncryptedPdfError(f"{name}: the PDF is password-protected")
    if "invalid page count 0" in lowered:
        return EmptyPdfError(f"{name}: the PDF has no pages")
    return CorruptPdfError(f"{name}: the PDF is damaged and cannot be read")


def _page_sizes(info: dict[str, object], pages: int) -> tuple[tuple[float, float], ...]:
    sizes: dict[int, tuple[float, float]] = {}
    for key, value in info.items():
        match = _PAGE_SIZE.match(key)
        numbers = re.findall(r"[\d.]+", str(value))
        if match and len(numbers) >= 2:
            sizes[int(match.group(1))] = (float(numbers[0]), float(numbers[1]))
    default = sizes.get(1, (612.0, 792.0))  # US Letter, if poppler printed no sizes
    return tuple(sizes.get(number, default) for number in range(1, pages + 1))
