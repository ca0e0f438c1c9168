"""Images -> PDF, one page per image (per frame of a TIFF), in a child process under the file's
time budget and memory cap (``rag.ingest.sandbox``'s launcher), so that a hostile image costs at
most what a hostile PDF may.

Pillow reads the image: EXIF orientation is applied (a phone photo stands the right way up);
every TIFF frame is a page, a GIF or animated WebP gives its first frame; CMYK, 16-bit,
palette and transparent images are made 8-bit RGB (transparency over white). An image over
``MAX_IMAGE_PIXELS`` is refused before it is decoded (a decompression bomb declares huge
dimensions in a tiny file), a truncated one is refused, and one over the page pixel cap is
scaled down to it. Each page is written as a JPEG at quality 95 without chroma subsampling,
sized so that rendering it at the index's DPI gives back its own pixels.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from rag.errors import ConversionError
from rag.ingest import sandbox

MAX_IMAGE_PIXELS = 100_000_000  # declared by the file, before decoding


def to_pdf(sources: list[Path], target: Path, name: str, budget: sandbox.Budget, settings) -> None:
    """Write the images ``sources`` (in order) as the PDF ``target``, within ``budget``."""
    limits = [str(settings.dpi), str(settings.max_page_pixels), str(settings.max_pages)]
    files = [sandbox.absolute(source) for source in sources]
    arguments = [*limits, sandbox.absolute(target), *files]
    result = sandbox.run_python(__name__, arguments, budget, name, "reading the image")
    if result.returncode != 0:
        raise ConversionError(f"{name}: not a readable image")


# -- in the child ---------------------------------------------------------------------------


class Refused(Exception):
    """A file the child will not convert; its message is the reason, for people."""


def main(argv: list[str]) -> int:
    dpi, max_pixels, max_pages = (int(value) for value in argv[:3])
    target, sources = Path(argv[3]), [Path(source) for source in argv[4:]]
    try:
        convert(sources, target, dpi, max_pixels, max_pages)
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        return sandbox.REFUSED
    return 0


def convert(sources: list[Path], target: Path, dpi: int, max_pixels: int, max_pages: int) -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    written = 0
    for source in sources:
        try:
            with Image.open(source) as image:
                for frame in frames(image, max_pages - written):
                    page = as_page(frame, max_pixels)
                    page.save(
                        target, "PDF", append=written > 0, resolution=dpi, quality=95,
                        subsampling=0,
                    )  # fmt: skip
                    written += 1
        except Refused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise Refused(_bomb(error)) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise Refused(_unreadable(source, error, len(sources) > 1)) from None


def frames(image, room: int):
    """The frames that are pages: every TIFF frame, the first of anything else."""
    count = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
    if count > room:
        raise Refused(f"{count} frames is over the {room}-page limit")
    for number in range(count):
        image.seek(number)
        _check_size(image)
        yield image


def _check_size(image) -> None:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise Refused(
            f"{width:,} x {height:,} pixels is over the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel limit for an image"
        )
    if not width or not height:
        raise Refused("the image is empty (0 pixels)")


def as_page(image, max_pixels: int):
    """``image`` upright, 8-bit RGB and within ``max_pixels``."""
    from PIL import Image, ImageOps

    if image.format == "JPEG":  # decode at a power-of-two reduction when that still fits
        image.draft("RGB", _fitting(image.size, max_pixels))
    image = ImageOps.exif_transpose(image)
    image = _rgb(image)
    width, height = image.size
    if width * height > max_pixels:
        image = image.resize(_fitting(image.size, max_pixels), Image.Resampling.LANCZOS)
    return image


def _rgb(image):
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit and wider: scaled to 8
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8))
    if image.mode in {"P", "PA"}:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        white = Image.new("RGB", image.size, "white")
        white.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return white
    return image.convert("RGB")


def _fitting(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    return max(1, int(width * scale)), max(1, int(height * scale))


def _bomb(error: Exception) -> str:
    return f"over the {MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel limit for an image ({error})"[:300]


def _unreadable(source: Path, error: Exception, several: bool) -> str:
    where = f"{source.name}: " if several else ""
    reason = str(error) or type(error).__name__
    if "truncated" in reason:
        return f"{where}the image is damaged (truncated)"
    return f"{where}not a readable image ({reason[:160]})"
