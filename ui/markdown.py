"""Text from users and files shown in Markdown."""

from __future__ import annotations

import re


def escape_markdown(text: str) -> str:
    """``text`` shown literally in Markdown: a file name cannot add links, images or HTML
    (without unescaped brackets or angle brackets there are none); other characters stay
    readable for API clients.

    >>> print(escape_markdown("<img src=x>![a](b)_c.pdf"))
    \\<img src=x\\>!\\[a\\](b)_c.pdf
    """
    return re.sub(r"([\\`\[\]<>&])", r"\\\1", text)


def literal_markdown(text: str) -> str:
    """``text`` shown exactly as written, within a line of Markdown rendered for people only
    (the chat): every character that could start inline markup escaped, ``_`` and ``*`` of
    emphasis too, so two ``pdfjs__tracemonkey.pdf`` on a line keep their underscores.

    >>> print(literal_markdown("[a__b.pdf p.1], *c* ~~d~~"))
    \\[a\\_\\_b.pdf p.1\\], \\*c\\* \\~\\~d\\~\\~
    """
    return re.sub(r"([\\`*_\[\]<>&~|])", r"\\\1", text)
