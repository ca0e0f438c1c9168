"""A text file's bytes -> its text, whatever encoding it was saved in, never failing.

The order, most certain first: a byte-order mark (UTF-8, UTF-16, UTF-32); strict UTF-8; UTF-16
without a mark (every other byte NUL); UTF-8 with a few stray bytes of another encoding (a file
edited in two editors), each stray byte read as Windows-1252; an encoding the file declares
(``<meta charset>``, ``<?xml encoding?>``) that decodes it; a Western file in Windows-1252; the
best guess of ``charset_normalizer`` for the rest (Greek, Cyrillic, ... code pages); and last
Windows-1252 with Latin-1 for its five undefined bytes, which reads any byte.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

_BOMS = (  # UTF-32's marks first: UTF-16 LE's is the start of UTF-32 LE's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
SAMPLE = 64 * 1024  # bytes charset_normalizer and the UTF-16 test look at
_STRAY = re.compile("[\udc80-\udcff]+")  # bytes that were not UTF-8, kept by surrogateescape
_NON_ASCII = re.compile(r"[^\x00-\x7f\udc80-\udcff]")
_DECLARED = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.I)
# A Western European text has few letters outside ASCII (French about 4 %, German 2 %); a
# Greek or Cyrillic code page read as Windows-1252 has mostly such letters.
WESTERN_SHARE = 0.3
STRAY_PER_CHARACTER = 10


def decode(data: bytes) -> str:
    """``data`` as text; never raises.

    >>> decode("café".encode("latin-1")), decode("café".encode("utf-8"))
    ('café', 'café')
    >>> decode(codecs.BOM_UTF16_LE + "naïve".encode("utf-16-le"))
    'naïve'
    >>> decode("crème brûlée, ".encode() + "café".encode("cp1252"))  # two encodings, one file
    'crème brûlée, café'
    """
    for read in (_marked, _utf8, _utf16, _mostly_utf8, _declared, _western, _guessed):
        text = read(data)
        if text is not None:
            return text
    return windows_1252(data)


def _marked(data: bytes) -> str | None:
    for mark, encoding in _BOMS:
        if data.startswith(mark):
            return data[len(mark) :].decode(encoding, errors="replace")
    return None


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _utf16(data: bytes) -> str | None:
    order = utf16_order(data[:SAMPLE])
    return data.decode(order, errors="replace") if order else None


def utf16_order(start: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` for mostly-ASCII UTF-16 without a byte-order mark (the
    NUL bytes of its ASCII characters all on one side), else None (``rag.ingest.formats``
    accepts such a file as text by the same test).

    >>> utf16_order("plain words".encode("utf-16-be")), utf16_order(b"plain words")
    ('utf-16-be', None)
    """
    sample = start[: len(start) // 2 * 2]
    if len(sample) < 8:
        return None
    evens, odds = sample[0::2], sample[1::2]
    for zeros, text, order in ((odds, evens, "utf-16-le"), (evens, odds, "utf-16-be")):
        if zeros.count(0) >= 0.9 * len(zeros) and text.count(0) <= 0.1 * len(text):
            return order
    return None


def windows_1252(data: bytes) -> str:
    """``data`` read as Windows-1252, any byte (Latin-1 for the five it leaves undefined)."""
    return _read_stray(
        data.decode("cp1252", errors="surrogateescape"), lambda b: b.decode("latin-1")
    )


def _read_stray(text: str, read: Callable[[bytes], str]) -> str:
    """``text`` with each run of bytes that ``surrogateescape`` kept read by ``read``."""
    if not _STRAY.search(text):
        return text
    return _STRAY.sub(lambda run: read(run.group().encode("utf-8", "surrogateescape")), text)


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with some bytes that are not, those read as Windows-1252; None when the file is
    not mostly UTF-8 (judged on its first ``SAMPLE`` bytes): fewer than one real multi-byte
    character for ``STRAY_PER_CHARACTER`` stray bytes (a Cyrillic code page makes a valid
    UTF-8 pair now and then, by chance)."""
    sample = data[:SAMPLE].decode("utf-8", errors="surrogateescape")
    stray = sum(len(run) for run in _STRAY.findall(sample))
    if len(_NON_ASCII.findall(sample)) * STRAY_PER_CHARACTER < stray:
        return None
    return _read_stray(data.decode("utf-8", errors="surrogateescape"), windows_1252)


def _declared(data: bytes) -> str | None:
    """``data`` in the encoding its first bytes declare, when that decodes it (UTF-16 and
    UTF-32 declared without a byte-order mark are not believed: a lie decodes as anything)."""
    found = _DECLARED.search(data[:1024])
    if not found or found.group(1).lower().startswith((b"utf-16", b"utf-32", b"utf16", b"utf32")):
        return None
    try:
        return data.decode(found.group(1).decode("ascii"))
    except (LookupError, UnicodeDecodeError):
        return None


def _western(data: bytes) -> str | None:
    """``data`` as Windows-1252 when it reads as a Western European language would."""
    letters = [c for c in windows_1252(data[:SAMPLE]) if c.isalpha()]
    outside = sum(not c.isascii() for c in letters)
    return windows_1252(data) if outside <= WESTERN_SHARE * max(len(letters), 1) else None


def _guessed(data: bytes) -> str | None:
    """``data`` in ``charset_normalizer``'s best guess of a legacy encoding, if it has one.
    A guess of UTF-16 or UTF-32 (what it says of a few Latin-1 bytes) is not taken: both were
    tested above."""
    import charset_normalizer

    best = charset_normalizer.from_bytes(data[:SAMPLE]).best()
    if best is None or best.encoding.startswith(("utf_16", "utf_32")):
        return None
    try:
        return data.decode(best.encoding, errors="replace")
    except LookupError:
        return None
