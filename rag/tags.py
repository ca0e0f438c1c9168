"""Document tags: free-form labels (``finance``, ``2024``, ``team:legal``) that group documents
for listing and for asking within them.

A tag is 1 to 40 letters (any script), digits, ``-``, ``_``, ``.`` or ``:``, starting with a
letter or digit; it is compared and stored case-folded, so ``Finance`` and ``finance`` are one
tag. Anything else is refused with one line saying why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.errors import TagError

MAX_TAG_LENGTH = 40
MAX_TAGS = 32  # per document
_TAG = re.compile(rf"[^\W_][\w.:-]{{0,{MAX_TAG_LENGTH - 1}}}")


def clean_tag(raw: str) -> str:
    """``raw`` as a stored tag, or TagError.

    >>> clean_tag(" Finance "), clean_tag("2024"), clean_tag("team:legal"), clean_tag("Ärzte")
    ('finance', '2024', 'team:legal', 'ärzte')
    >>> clean_tag("q3 report")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rag.errors.TagError: bad tag 'q3 report': a tag is 1-40 letters, digits, ... (no spaces)
    """
    tag = raw.strip().casefold()
    if not _TAG.fullmatch(tag):
        raise TagError(
            f"bad tag {raw!r}: a tag is 1-{MAX_TAG_LENGTH} letters, digits, '-', '_', '.' or "
            "':', starting with a letter or digit (no spaces)"
        )
    return tag


def clean_tags(raw: Iterable[str]) -> tuple[str, ...]:
    """Several tags, each cleaned, without repeats, sorted."""
    return tuple(sorted({clean_tag(tag) for tag in raw}))


def changed_tags(
    current: Iterable[str], add: Iterable[str] = (), remove: Iterable[str] = ()
) -> tuple[str, ...]:
    """``current`` with ``add`` added and ``remove`` removed (removing an absent tag is fine),
    at most ``MAX_TAGS``.

    >>> changed_tags(["2024", "finance"], add=["Legal"], remove=["2024"])
    ('finance', 'legal')
    """
    tags = (set(current) | set(clean_tags(add))) - set(clean_tags(remove))
    if len(tags) > MAX_TAGS:
        raise TagError(f"a document carries at most {MAX_TAGS} tags")
    return tuple(sorted(tags))
