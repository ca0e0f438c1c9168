"""Pictures for the tests: which way is up, 16-bit and palette modes, frames, and hostile
ones (a decompression bomb; a truncated picture is ``files.truncated`` of one of these)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image


def photo(path: Path, size=(800, 600), orientation: int = 1, mode: str = "RGB") -> Path:
    """A picture with a dark band across its top, so which way is up can be checked;
    ``orientation`` is written as its EXIF tag."""
    image = Image.new("RGB", size, "white")
    image.paste((20, 20, 20), (0, 0, size[0], size[1] // 5))
    options = {}
    if path.suffix in (".jpg", ".jpeg"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif
    image.convert(mode).save(path, **options)
    return path


def sixteen_bit(path: Path) -> Path:
    import numpy as np

    ramp = (np.arange(256 * 64, dtype=np.uint16).reshape(64, 256) * 4).astype(np.uint16)
    Image.fromarray(ramp, mode="I;16").save(path)
    return path


def palette_with_transparency(path: Path) -> Path:
    image = Image.new("P", (120, 80), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * (254 * 3))
    image.paste(1, (0, 0, 60, 80))
    image.save(path, transparency=0)
    return path


def frames(path: Path, count: int, **options) -> Path:
    """A multi-frame image (TIFF or GIF): frame N is N shades darker."""
    images = [Image.new("RGB", (200, 150), (255 - 40 * n,) * 3) for n in range(count)]
    images[0].save(path, save_all=True, append_images=images[1:], **options)
    return path


def decompression_bomb(path: Path, side: int = 100_000) -> Path:
    """A tiny PNG declaring ``side`` x ``side`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + checksum

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path
