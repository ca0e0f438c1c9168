"""How answers cite pages: ``[report.pdf p.3]``, ``[deck.pptx slide 3]``, ``[book.xlsx sheet 2]``.

Written here once: the answerer is asked to cite this way, the index's hits carry their label,
and the web app finds citations in an answer (``PATTERN``) to link them to their pages.
"""

from __future__ import annotations

import re

# What a document's pages are called: pages, a presentation's slides, a workbook's sheets.
UNITS = ("p.", "slide", "sheet")


def label(name: str, page_number: int, unit: str = "p.") -> str:
    """How answers cite a page: ``[report.pdf p.3]``, ``[deck.pptx slide 3]``,
    ``[book.xlsx sheet 2]``.

    >>> label("deck.pptx", 3, "slide"), label("report.pdf", 3)
    ('[deck.pptx slide 3]', '[report.pdf p.3]')
    """
    return f"[{name} {mark(unit, page_number)}]"


def mark(unit: str, page_number: int) -> str:
    """``p.3``, ``slide 3``, ``sheet 3``."""
    return f"{unit}{'' if unit.endswith('.') else ' '}{page_number}"


def _unit_pattern(unit: str) -> str:
    return re.escape(unit) + ("" if unit.endswith(".") else " ")


# A citation in an answer's text, as ``label`` writes it (no groups: the whole match is the
# citation): ``\[[^\[\]]+ (?:p\.|slide |sheet )\d+\]``.
PATTERN = r"\[[^\[\]]+ (?:" + "|".join(_unit_pattern(u) for u in UNITS) + r")\d+\]"
