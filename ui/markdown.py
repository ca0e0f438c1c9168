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
