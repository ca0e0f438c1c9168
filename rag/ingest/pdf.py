"""PDF file -> page images, through poppler's pdfinfo and pdftoppm (``rag.ingest.sandbox``).

Pages are rendered a few at a time (``Settings.render_chunk_pages``) and written to disk as
they come, so a 500-page PDF never holds all its pages in memory. poppler writes raw PPM (its own
PNG writer costs three times the rendering) and Pillow compresses each page to PNG; with
``Settings.page_workers`` above 1, that many chunks are rendered at once, in page order.

Every poppler call runs in a child process under the file's time budget (``render_timeout_s``,
for the whole file), a time limit per page (``render_page_timeout_s``: a pathological page is
refused in seconds, while a long document still has the whole file's budget) and a memory cap
(``render_memory_mb``, per process). Whether a file is a PDF is poppler's call: what it can open
is one, wherever its header is. Every way a file can fail (not a PDF, encrypted, corrupt, empty,
too large, too costly, a page too small to read) raises a typed ``PdfError`` whose message is one
line naming the file. What renders but looks wrong (many blank pages from a damaged file, an XFA
form) is indexed with a note (``rendering_notes``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from rag.config import Settings, page_workers
from rag.errors import (
    CorruptPdfError,
    EmptyPdfError,
    EncryptedPdfError,
    NotAPdfError,
    PdfError,
    PdfLimitError,
    PdfTooLargeError,
)
from rag.ingest import sandbox
from rag.ingest.names import display_name
from rag.ingest.passwords import password_forms
from rag.pipelining import ahead

logger = logging.getLogger(__name__)

_PAGE_SIZE = re.compile(r"^Page\s+(\d+) size:\s*([\d.]+) x ([\d.]+)")
_POINTS_PER_INCH = 72.0
MIN_PAGE_SIDE = 16  # pixels: a page rendered smaller than this holds nothing to read
MIN_DPI = 0.01
# zlib level of the kept page images (Pillow's default): files about the size of poppler's own
# PNGs, written in under half the time its PNG writer takes.
PNG_LEVEL = 6
# A page whose every channel spans at most this many levels shows nothing (one flat colour).
BLANK_SPREAD = 2

Chunk = tuple[int, int, float]  # first page, last page, DPI


@dataclass(frozen=True)
class PdfInfo:
    """A PDF poppler can open: page count, each page's size in points, and how to open it
    again (its password and the file's time budget, shared by every later call)."""

    pages: int
    page_sizes: tuple[tuple[float, float], ...]  # (width, height) in points, one per page
    name: str = "document.pdf"
    # the password in the byte form that opened the file (rag.ingest.passwords)
    password: str | bytes | None = field(default=None, repr=False)
    budget: sandbox.Budget | None = field(default=None, repr=False, compare=False)
    form: str = "none"  # pdfinfo's "Form:": none, AcroForm or XFA
    complaints: bool = False  # poppler reported errors reading the file (it may be damaged)


@dataclass(frozen=True)
class RenderedPage:
    page_number: int  # 1-based
    path: Path
    width: int
    height: int
    blank: bool = False  # one flat colour: nothing drawn
    complaints: bool = False  # poppler reported errors while rendering this page's chunk

    def open(self) -> Image.Image:
        """The page image, fully read into memory (no file handle left open)."""
        with Image.open(self.path) as image:
            return image.convert("RGB")


# Where a rendered page is kept: (folder, page number) -> its path.
PagePath = Callable[[Path, int], Path]


def _page_path(folder: Path, page_number: int) -> Path:
    return folder / f"page-{page_number}.png"


def inspect_pdf(
    path: Path,
    settings: Settings,
    password: str | None = None,
    name: str | None = None,
    budget: sandbox.Budget | None = None,
) -> PdfInfo:
    """Validate ``path`` as a renderable PDF within the limits; raise a ``PdfError`` if not.
    ``name`` is the name shown in messages (default: the file's, made safe); ``budget``: the
    file's, when converting it into this PDF has already spent part of it."""
    path = Path(path)
    name = name or display_name(path.name)
    check_size(path, settings, name)
    budget = budget or file_budget(settings)
    result, opened_with = _read_info(path, settings, budget, name, password)
    fields = _fields(result.stdout)
    pages = int(fields.get("Pages", "0") or 0)
    if pages == 0:
        raise EmptyPdfError(f"{name}: the PDF has no pages")
    if pages > settings.max_pages:
        raise PdfTooLargeError(f"{name}: {pages} pages is over the {settings.max_pages}-page limit")
    sizes = _page_sizes(result.stdout, pages)
    form = fields.get("Form", "none")
    return PdfInfo(pages, sizes, name, opened_with, budget, form, _complained(result.stderr))


def check_size(path: Path, settings: Settings, name: str) -> None:
    """Refuse a file that is missing, empty or over ``max_file_mb``."""
    if not path.is_file():
        raise NotAPdfError(f"{name}: no such file")
    size_mb = path.stat().st_size / 2**20
    if size_mb > settings.max_file_mb:
        raise PdfTooLargeError(
            f"{name}: {size_mb:.0f} MB is over the {settings.max_file_mb} MB limit"
        )
    if path.stat().st_size == 0:
        raise EmptyPdfError(f"{name}: the file is empty")


def file_budget(settings: Settings) -> sandbox.Budget:
    """What one file may cost, starting now: the per-file and per-page time limits and the
    memory cap of every poppler process."""
    return sandbox.Budget.start(
        settings.render_timeout_s, settings.render_memory_mb, settings.render_page_timeout_s
    )


def _read_info(
    path: Path, settings: Settings, budget: sandbox.Budget, name: str, password: str | None
) -> tuple[sandbox.Result, str | bytes | None]:
    """pdfinfo's report of ``path`` (per-page sizes for at most max_pages + 1 pages: enough
    to refuse a longer PDF) and the password form that opened it; a PdfError if none did."""
    last = str(settings.max_pages + 1)
    forms: list[bytes | None] = password_forms(password) if password else [None]
    for form in forms:
        arguments = ["-f", "1", "-l", last, *password_arguments(form)]
        result = _call(
            "pdfinfo", [*arguments, sandbox.absolute(path)], budget, name, "reading the PDF"
        )
        if result.returncode == 0:
            return result, form
        if "incorrect password" not in result.stderr.lower():
            break  # another form of the same password cannot help
    raise _classify(name, result.stderr, password)


def rendering_notes(
    info: PdfInfo, blank: list[int], complaints: bool, *, converted: bool = False
) -> list[str]:
    """What a user should know about a file that was indexed but may not show what it holds.

    Blank pages (numbers in ``blank``) are damage only when poppler reported errors; otherwise
    they are what the file holds, said plainly: always for a file converted from another kind
    (an empty Word document, a transparent image), and for a PDF when most of it is blank (a
    deliberately empty page in a healthy PDF says nothing). And an XFA form.

    >>> info = PdfInfo(16, ((612.0, 792.0),) * 16)
    >>> rendering_notes(info, [2, 3], complaints=True)
    ['2 blank pages with rendering errors: the file may be damaged']
    >>> rendering_notes(info, [4], False), rendering_notes(info, [1], False, converted=True)
    ([], ['page 1 is blank'])
    >>> rendering_notes(info, list(range(1, 10)), complaints=False)
    ['pages 1, 2, 3, 4, 5 and 4 more are blank']
    """
    notes = []
    if blank and (complaints or info.complaints):
        pages = "1 blank page" if len(blank) == 1 else f"{len(blank)} blank pages"
        notes.append(f"{pages} with rendering errors: the file may be damaged")
    elif blank and (converted or 2 * len(blank) > info.pages):
        notes.append(blank_pages(blank))
    if info.form == "XFA":
        notes.append(
            "an XFA form: only what its pages hold could be rendered, not the form's own "
            "content (often just a 'Please wait...' page)"
        )
    return notes


def blank_pages(numbers: list[int], shown: int = 5) -> str:
    """``page 3 is blank``, ``pages 2 and 5 are blank``, ``pages 1, 2, 3, 4, 5 and 4 more``.

    >>> blank_pages([3]), blank_pages([2, 5])
    ('page 3 is blank', 'pages 2 and 5 are blank')
    """
    if len(numbers) == 1:
        return f"page {numbers[0]} is blank"
    named = [str(n) for n in numbers[:shown]]
    rest = len(numbers) - len(named)
    listed = (
        f"{', '.join(named)} and {rest} more"
        if rest
        else f"{', '.join(named[:-1])} and {named[-1]}"
    )
    return f"pages {listed} are blank"


def render_pages(
    path: Path,
    out_dir: Path,
    settings: Settings,
    info: PdfInfo | None = None,
    *,
    page_path: PagePath | None = None,
) -> Iterator[RenderedPage]:
    """Render every page into ``out_dir`` as a PNG (named by ``page_path(out_dir, number)``:
    the document store's name for it; by default ``page-N.png``), yielding each as soon as it
    is on disk.

    Each page gets ``settings.dpi`` unless that would exceed ``settings.max_page_pixels``,
    in which case its DPI is lowered to fit, so a poster-sized page cannot exhaust memory. A
    page that cannot be rendered, or renders too small to read, refuses the whole file.
    """
    info = info or inspect_pdf(path, settings)
    if info.budget is None:  # a PdfInfo made by hand: the file's budget starts now
        info = dataclasses.replace(info, budget=file_budget(settings))
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = list(_render_chunks(info, settings))
    name = page_path or _page_path
    render = lambda chunk: _render_chunk(Path(path), out_dir, info, chunk, name)  # noqa: E731
    workers = page_workers(settings)
    if workers == 1:  # on the caller's thread, one chunk after another
        for chunk in chunks:
            yield from render(chunk)
        return
    with closing(ahead(chunks, render, depth=workers, workers=workers)) as rendered:
        for _, pages in rendered:
            yield from pages


def page_dpi(width_pt: float, height_pt: float, settings: Settings) -> float:
    """The DPI for one page: ``settings.dpi``, lowered (to a hundredth) so the render fits the
    pixel cap, however absurd the page's size."""
    area_in2 = max(width_pt / _POINTS_PER_INCH * height_pt / _POINTS_PER_INCH, 1e-6)
    fitting = math.floor(100 * math.sqrt(settings.max_page_pixels / area_in2)) / 100
    return max(MIN_DPI, min(settings.dpi, fitting))


def _render_chunks(info: PdfInfo, settings: Settings) -> Iterator[Chunk]:
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


def _render_chunk(
    path: Path, out_dir: Path, info: PdfInfo, chunk: Chunk, page_path: PagePath
) -> list[RenderedPage]:
    """Pages ``first``..``last`` through one pdftoppm call, each kept at ``page_path``."""
    first, last, dpi = chunk
    scratch = out_dir / f"render-{first}"
    scratch.mkdir()
    arguments = ["-r", f"{dpi:g}", "-f", str(first), "-l", str(last)]
    arguments += [*password_arguments(info.password), sandbox.absolute(path)]
    what = f"rendering pages {first}-{last}"
    written = lambda: sum(1 for _ in scratch.glob("p-*.ppm"))  # noqa: E731
    try:
        result = _call(
            "pdftoppm",
            [*arguments, str(scratch / "p")],
            info.budget,
            info.name,
            what,
            pages_done=written,
            first_step=first,
        )
        complaints = _complained(result.stderr)
        rendered = {int(p.stem.rsplit("-", 1)[1]): p for p in scratch.glob("p-*.ppm")}
        kept = []
        for number in range(first, last + 1):
            if number not in rendered:
                raise _render_failure(info, number, result)
            target = page_path(out_dir, number)
            kept.append(_keep(rendered.pop(number), number, target, info.name, complaints))
        return kept
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # gone before any page is handed out


def _keep(
    image_path: Path, page_number: int, target: Path, name: str, complaints: bool
) -> RenderedPage:
    """The raw render ``image_path`` read, checked, kept as a PNG at ``target`` and deleted."""
    try:
        with Image.open(image_path) as image:
            image.load()
    except (OSError, ValueError):
        message = f"{name}: page {page_number} rendered to an unreadable image"
        raise CorruptPdfError(message) from None
    finally:
        image_path.unlink(missing_ok=True)
    width, height = image.size
    if min(width, height) < MIN_PAGE_SIDE:
        raise EmptyPdfError(
            f"{name}: page {page_number} renders to {width}x{height} pixels, too small to read"
        )
    image.save(target, "PNG", compress_level=PNG_LEVEL)
    return RenderedPage(page_number, target, width, height, _is_blank(image), complaints)


def _is_blank(image: Image.Image) -> bool:
    """One flat colour (within ``BLANK_SPREAD`` levels per channel): nothing was drawn."""
    extrema = image.getextrema()
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    return all(high - low <= BLANK_SPREAD for low, high in bands)


def _complained(stderr: str) -> bool:
    """poppler printed an error (not a warning) while reading or drawing the file."""
    return any(line.startswith(("Syntax Error", "Internal Error")) for line in stderr.splitlines())


def _render_failure(info: PdfInfo, number: int, result: sandbox.Result) -> PdfError:
    if _out_of_memory(result):
        return _memory_error(info.name, f"rendering page {number}")
    reason = _poppler_reason(result.stderr)
    return CorruptPdfError(f"{info.name}: page {number} could not be rendered{reason}")


def _call(
    tool: str,
    arguments: list,
    budget: sandbox.Budget,
    name: str,
    what: str,
    *,
    pages_done: Callable[[], int] | None = None,
    first_step: int = 1,
) -> sandbox.Result:
    """One poppler call under the file's budget; its limits become one-line PdfErrors.
    ``pages_done`` counts the pages written so far: each must come within the per-page
    limit (``first_step``: the number of the call's first page, for the message)."""
    try:
        result = sandbox.run(tool, arguments, budget, pages_done)
    except sandbox.OverTime as over:
        if over.stalled_after is not None:
            page = first_step + over.stalled_after
            raise PdfLimitError(
                f"{name}: page {page} took longer than the {budget.page_seconds:g} s allowed per "
                "page to render (RAG_RENDER_PAGE_TIMEOUT_S)"
            ) from None
        raise PdfLimitError(
            f"{name}: {what} took longer than the {budget.seconds:g} s allowed per file "
            "(RAG_RENDER_TIMEOUT_S)"
        ) from None
    if _out_of_memory(result):
        raise _memory_error(name, what)
    if result.killed:
        raise CorruptPdfError(f"{name}: poppler crashed while {what} (signal {-result.returncode})")
    return result


def _out_of_memory(result: sandbox.Result) -> bool:
    lowered = result.stderr.lower()
    memory = ("bad_alloc", "out of memory", "cannot allocate")
    return any(words in lowered for words in memory)


def _memory_error(name: str, what: str) -> PdfLimitError:
    return PdfLimitError(
        f"{name}: {what} needed more memory than allowed per file (RAG_RENDER_MEMORY_MB)"
    )


def _fields(stdout: str) -> dict[str, str]:
    fields = {}
    for line in stdout.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields[key.strip()] = value.strip()
    return fields


def _classify(name: str, stderr: str, password: str | None) -> PdfError:
    lowered = stderr.lower()
    if "password" in lowered or "encrypt" in lowered:
        if password:
            return EncryptedPdfError(f"{name}: wrong password")
        return EncryptedPdfError(f"{name}: password required (the PDF is encrypted)")
    if "wrong page range" in lowered:  # asked for page 1 of a PDF without pages
        return EmptyPdfError(f"{name}: the PDF has no pages")
    if "may not be a pdf" in lowered:
        return NotAPdfError(f"{name}: not a PDF file")
    reason = _poppler_reason(stderr)
    return CorruptPdfError(f"{name}: the PDF is damaged and cannot be read{reason}")


def _poppler_reason(stderr: str) -> str:
    """poppler's last message, briefly, as `` (poppler: ...)``; empty when it said nothing."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    reason = " ".join(lines[-1].split())[:120]
    return f" (poppler: {reason})"


def _page_sizes(stdout: str, pages: int) -> tuple[tuple[float, float], ...]:
    sizes: dict[int, tuple[float, float]] = {}
    for line in stdout.splitlines():
        match = _PAGE_SIZE.match(line)
        if match:
            sizes[int(match.group(1))] = (float(match.group(2)), float(match.group(3)))
    default = sizes.get(1, (612.0, 792.0))  # US Letter, if poppler printed no sizes
    return tuple(sizes.get(number, default) for number in range(1, pages + 1))


def password_arguments(password: sandbox.Argument | None) -> list[sandbox.Argument]:
    """Both poppler password options: the user password opens the file; an owner password
    given by mistake opens it too."""
    return ["-upw", password, "-opw", password] if password else []
