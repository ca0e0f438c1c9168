"""Indexing progress in words: pages done, pages per second, time left."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class PageRate:
    """Rate and ETA of one document's pages, from the moment it was created."""

    started: float = field(default_factory=time.monotonic)

    def describe(self, done: int, total: int, now: float | None = None) -> str:
        """``"4/10 pages, 2.0 pages/s, 3 s left"``.

        >>> PageRate(started=0.0).describe(4, 10, now=2.0)
        '4/10 pages, 2.0 pages/s, 3 s left'
        >>> PageRate(started=0.0).describe(10, 10, now=4.0)
        '10/10 pages, 2.5 pages/s, done in 4 s'
        """
        elapsed = (time.monotonic() if now is None else now) - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{done}/{total} pages, {rate:.1f} pages/s"
        if done >= total:
            return f"{text}, done in {_duration(elapsed)}"
        if rate <= 0:
            return text
        return f"{text}, {_duration((total - done) / rate)} left"


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 5 s"``, ``"2 h 10 min"``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
