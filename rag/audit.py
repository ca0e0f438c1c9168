"""The audit log, opt-in: who did what and when, one JSON object per line, for an admin to
read back (``jq``, a log shipper). Off unless given a path.

Each line holds ``time`` (ISO 8601 UTC to the second), ``event``, ``who`` (the user's name, ""
for the local CLI or a server without logins) and the event's details. The events the app
records, and their details:

- ``login``: ``ok`` (true or false), ``address`` (the client's);
- ``upload`` (from the web app) and ``index`` (from the CLI): ``doc_id``, ``name``,
  ``visibility``;
- ``delete``: ``doc_id``, ``name``;
- ``retag``: ``doc_id``, ``tags`` (as they are after the change);
- ``visibility``: ``doc_id``, ``visibility`` (the new one);
- ``question``: ``question`` (its text), ``scope`` (the documents and tags asked within),
  ``pages`` (the ``doc_id`` and ``page`` of each page that answered);
- ``sync``: what a folder sync added, replaced and removed.

The file is rotated by size (``audit.jsonl`` -> ``audit.jsonl.1`` ... ``.N``), so it never
grows past about ``max_bytes * (backups + 1)``. One process writes a given file; its threads
take turns. Passwords and API keys are never recorded: callers pass none.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
RESERVED = ("time", "event", "who")


class Audit:
    """Records events to ``path`` (created with its folder at the first event), rotated when
    it would pass ``max_bytes``, keeping ``backups`` older files; records nothing when
    ``path`` is None."""

    def __init__(self, path: Path | None, max_bytes: int = 10 * MIB, backups: int = 5) -> None:
        self.path = path
        self._handler: RotatingFileHandler | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The handler alone, not a logger: nothing reaches the root logger or its
            # handlers, and its lock makes each line whole among threads.
            self._handler = RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
            )
            self._handler.setFormatter(logging.Formatter("%(message)s"))

    def __repr__(self) -> str:
        return f"Audit({self.path.name if self.path else 'off'})"

    def __bool__(self) -> bool:
        """Whether events are recorded."""
        return self._handler is not None

    def record(self, event: str, who: str, **details: Any) -> None:
        """Append one line for ``event`` by ``who``; ``details`` must be JSON-able (sets and
        tuples become lists, anything else its ``str``) and may not be named time, event
        or who."""
        if self._handler is None or self.path is None:
            return
        clash = sorted(set(details) & set(RESERVED))
        if clash:
            raise ValueError(f"audit details may not be named {', '.join(clash)}")
        line = json.dumps(
            {"time": _now(), "event": event, "who": who, **details},
            ensure_ascii=False,
            default=_plain,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)  # removed since: made again
        self._handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        """Close the file (a later event opens it again)."""
        if self._handler is not None:
            self._handler.close()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: object) -> object:
    """A value json cannot write as it is, as one it can.

    >>> _plain({"b", "a"}), _plain(Path("x.pdf"))
    (['a', 'b'], 'x.pdf')
    """
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)
