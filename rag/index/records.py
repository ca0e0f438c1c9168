"""What the index holds and finds: a ``Document`` record and a search ``Hit``, typed and frozen.

Every backend, the hybrid search and the engine's callers share these; they import nothing of
the index itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag.citations import label


@dataclass(frozen=True)
class Document:
    doc_id: str  # content hash prefix: the same bytes are the same document
    name: str  # file name as uploaded
    pages: int
    added: str  # ISO-8601 UTC
    tags: tuple[str, ...] = ()  # rag.tags: cleaned, sorted
    unit: str = "p."  # what its pages are called in citations (rag.citations.UNITS)
    owner: str = ""  # who added it (rag.people's name); "" for the CLI and a server without users
    visibility: str = "everyone"  # who else may read it (rag.access.Visibility, written out)
    source: str = ""  # the file it was synced from (rag.sync), absolute; "" if uploaded
    # The document this one replaces (a synced file's older version): set from the commit until
    # the older one is gone, so that after a crash in between only this one is seen.
    replaces: str = ""

    def __post_init__(self) -> None:  # read back from JSON, tags are a list
        object.__setattr__(self, "tags", tuple(self.tags))


@dataclass(frozen=True)
class Hit:
    doc_id: str
    name: str
    page_number: int  # 1-based
    score: float  # the ranking's: MaxSim, BM25, or the two fused (rag.index.fusion)
    image_path: Path
    visual_score: float | None = None  # MaxSim, when the picture ranking found the page
    text_score: float | None = None  # BM25, when the words found it
    unit: str = "p."  # the document's: its pages are pages, slides or sheets
    # The second stage's (rag.models.rerankers), when it reordered the pages; ``score`` stays
    # the first stage's.
    rerank_score: float | None = None

    @property
    def sides(self) -> dict[str, float]:
        """Each ranking's own score of a fused hit, by the name users see: ``picture``
        (MaxSim) and ``words`` (BM25), for the rankings that found the page, and ``reranker``
        when a reranker scored it."""
        scores = {
            "picture": self.visual_score,
            "words": self.text_score,
            "reranker": self.rerank_score,
        }
        return {side: score for side, score in scores.items() if score is not None}

    @property
    def citation(self) -> str:
        """How answers cite this page: ``[name p.N]``, ``[deck.pptx slide N]``."""
        return label(self.name, self.page_number, self.unit)
