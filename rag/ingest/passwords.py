"""PDF passwords as the bytes a file's encryption expects.

A password is text, but a PDF's key is derived from bytes, and which bytes depends on the
encryption revision: AES-256 (revisions 5 and 6, PDF 2.0) takes the password after SASLprep
(RFC 4013) in UTF-8; the older RC4 and AES-128 revisions take it in PDFDocEncoding, which for
the characters a keyboard types is Latin-1. poppler uses the bytes it is given as they are, so
the app tries each form in turn; files whose writers skipped the preparation open too.
"""

from __future__ import annotations

import contextlib
import stringprep
import unicodedata

# RFC 3454 tables a SASLprep'd string must not contain (RFC 4013 section 2.3).
_PROHIBITED = (
    stringprep.in_table_c12,  # non-ASCII spaces (already mapped to spaces)
    stringprep.in_table_c21_c22,  # control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-characters
    stringprep.in_table_c5,  # surrogates
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties
    stringprep.in_table_c9,  # tagging characters
)


def saslprep(text: str) -> str:
    """``text`` prepared by SASLprep: soft hyphens and other invisible characters dropped,
    non-ASCII spaces made spaces, NFKC. Raises ValueError for a prohibited character or a
    string mixing left-to-right and right-to-left characters the wrong way.

    >>> saslprep("ﬁle\\u00adname\\u00a0Ⅸ"), saslprep("cafe\\u0301")
    ('filename IX', 'café')
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in text
        if not stringprep.in_table_b1(char)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    for char in prepared:
        if any(prohibited(char) for prohibited in _PROHIBITED):
            raise ValueError(f"U+{ord(char):04X} is not allowed in a prepared string")
    _check_bidi(prepared)
    return prepared


def _check_bidi(text: str) -> None:
    """RFC 3454 section 6: right-to-left text holds no left-to-right characters and starts
    and ends with right-to-left ones."""
    if not any(stringprep.in_table_d1(char) for char in text):
        return
    if any(stringprep.in_table_d2(char) for char in text):
        raise ValueError("mixes left-to-right and right-to-left characters")
    if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
        raise ValueError("right-to-left text must start and end with right-to-left characters")


def password_forms(password: str) -> list[bytes]:
    """The byte forms to try, most likely first: SASLprep'd UTF-8 (AES-256), plain UTF-8 (a
    writer that skipped SASLprep), Latin-1 (RC4 and AES-128); each form once.

    >>> password_forms("secret")
    [b'secret']
    >>> password_forms("ﬁ café")
    [b'fi caf\\xc3\\xa9', b'\\xef\\xac\\x81 caf\\xc3\\xa9']
    """
    forms = []
    with contextlib.suppress(ValueError):  # not preparable: the writer cannot have prepared it
        forms.append(saslprep(password).encode())
    forms.append(password.encode())
    with contextlib.suppress(UnicodeEncodeError):  # not typable in the old encodings
        forms.append(password.encode("latin-1"))
    return list(dict.fromkeys(forms))
