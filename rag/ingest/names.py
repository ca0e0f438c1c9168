"""Document names as users see them, made safe from whatever a file was called.

A name is only ever *shown* (document ids, content hashes, name the files on disk), but an
uploaded file's name is chosen by a stranger: it may carry directories (``../../etc/passwd.pdf``,
``C:\\x.pdf``), NUL and other control characters, bidirectional overrides that make
``evil\u202efdp.exe`` read as ``evilexe.pdf``, or run to thousands of bytes.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 255
FALLBACK = "document.pdf"


def display_name(raw: str) -> str:
    """The last path component of ``raw`` without control, format (bidi) or unassigned
    characters, whitespace collapsed, at most MAX_NAME_BYTES of UTF-8 keeping the extension.

    >>> display_name("../../etc/passwd.pdf")
    'passwd.pdf'
    >>> display_name("evil\\u202efdp.exe")
    'evilfdp.exe'
    >>> display_name("C:\\\\Users\\\\me\\\\report.pdf")
    'report.pdf'
    >>> display_name("\\x00")
    'document.pdf'
    """
    last = raw.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    kept = "".join(c for c in unicodedata.normalize("NFC", last) if _shown(c))
    name = " ".join(kept.split()).strip(". ")
    return _truncate(name) if name else FALLBACK


def _shown(character: str) -> bool:
    return unicodedata.category(character) not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _truncate(name: str) -> str:
    """``name`` cut to MAX_NAME_BYTES of UTF-8 on a character boundary, keeping a short
    extension such as ``.pdf``."""
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    suffix = dot + extension if stem and len(extension) <= 8 else ""
    room = MAX_NAME_BYTES - len(suffix.encode()) - len("…".encode())
    head = (stem if suffix else name).encode()[:room].decode(errors="ignore")
    return head + "…" + suffix
