"""Who is asking and what they may read: the ``Caller`` every verb acts for, and a document's
``Visibility`` (private to its owner, shared with named groups, or everyone's).

A caller may read a document they own, one shared with everyone or with a group they belong to,
and every document when they are an admin. The readable set is computed once per request and
becomes the search scope, so a person never sees any trace of another's documents. Names and
groups are the users store's (``rag.people``); groups are written like tags (``rag.tags``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rag.errors import AccessError, TagError
from rag.tags import clean_tag

PRIVATE, EVERYONE, GROUP = "private", "everyone", "group:"


@dataclass(frozen=True)
class Caller:
    """The person a request acts for: ``name`` (the users store's; "" for nobody in
    particular), the ``groups`` they belong to, and whether they are an ``admin`` (reads and
    changes everything)."""

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    def __post_init__(self) -> None:  # read back from JSON, groups are a list
        object.__setattr__(self, "groups", frozenset(self.groups))


# The CLI on the local data folder, and a server without a login: everything, as before users.
ADMIN = Caller("", admin=True)


@dataclass(frozen=True)
class Visibility:
    """Who may read a document besides its owner and admins: nobody (``private``), members
    of ``groups``, or ``everyone``. Written as ``private``, ``everyone`` or
    ``group:NAME[,group:NAME...]``."""

    kind: Literal["private", "groups", "everyone"] = "everyone"
    groups: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind == "groups":
            return ",".join(GROUP + group for group in self.groups)
        return self.kind

    def admits(self, caller: Caller) -> bool:
        """Whether ``caller``, not the owner, may read a document of this visibility."""
        if self.kind == "everyone":
            return True
        return self.kind == "groups" and not caller.groups.isdisjoint(self.groups)


def parse_visibility(text: str, known_groups: Iterable[str] | None = None) -> Visibility:
    """``private``, ``everyone`` or ``group:a[,group:b...]`` (also ``group:a,b``) as a
    Visibility; AccessError naming what is wrong, or a group not in ``known_groups`` (when
    given: the users store's groups).

    >>> parse_visibility("group:Finance,group:hr")
    Visibility(kind='groups', groups=('finance', 'hr'))
    >>> str(parse_visibility("group:hr,finance")), str(parse_visibility(" Everyone "))
    ('group:finance,group:hr', 'everyone')
    >>> parse_visibility("team")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rag.errors.AccessError: bad visibility 'team': say private, everyone or group:NAME...
    """
    raw = text.strip().casefold()
    if raw in (PRIVATE, EVERYONE):
        return Visibility(raw)  # type: ignore[arg-type]
    if not raw.startswith(GROUP):
        raise AccessError(
            f"bad visibility {text!r}: say private, everyone or group:NAME (several: "
            "group:a,group:b)"
        )
    groups = set()
    for item in raw.split(","):
        name = item.strip().removeprefix(GROUP)
        try:
            groups.add(clean_tag(name))
        except TagError:
            raise AccessError(f"bad visibility {text!r}: {name!r} is not a group name") from None
    if known_groups is not None:
        unknown = sorted(groups - set(known_groups))
        if unknown:
            raise AccessError(f"no group is named {', '.join(map(repr, unknown))}")
    return Visibility("groups", tuple(sorted(groups)))


def may_read(caller: Caller, owner: str, visibility: str) -> bool:
    """Whether ``caller`` may read a document owned by ``owner`` of ``visibility`` (its
    stored form): its owner, an admin, or whom the visibility admits."""
    if caller.admin or (owner and caller.name == owner):
        return True
    return parse_visibility(visibility).admits(caller)


def may_change(caller: Caller, owner: str) -> bool:
    """Whether ``caller`` may delete a document of ``owner``, or change its tags or
    visibility: its owner or an admin."""
    return caller.admin or bool(owner and caller.name == owner)
