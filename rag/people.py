"""The users store: who may log in, their groups, whether they are admins, and their API keys.

One JSON file, ``<data-dir>/users.json`` (mode 0600), with a version header::

    {"version": 1, "users": {"alice": {"hash": "$argon2id$...", "groups": ["finance"],
     "admin": false, "keys": [{"id": "1f2e3d4c", "digest": "<sha-256 hex>",
     "created": "2025-01-31T12:00:00Z"}]}}}

Passwords are kept only as salted argon2id hashes and API keys only as SHA-256 digests, so the
file gives away neither. Writers (the CLI, the web app, several of each) take turns through
``writer_lock`` on the file's folder and each reads the file afresh under it, so none loses
another's change; a write replaces the file in one rename, so readers (who take no lock) see a
whole file, and reread it only when it changed. No message or repr names a password or a key.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rag.access import Caller
from rag.errors import AccessError, TagError
from rag.tags import MAX_TAG_LENGTH, clean_tag

logger = logging.getLogger(__name__)
VERSION = 1
MIN_PASSWORD_LENGTH = 10  # NIST SP 800-63B asks for 8 at least; 10 leaves room for a name + year
_NAME = re.compile(r"[\w.@-]{1,64}")  # letters (any script), digits, . _ - @: e-mails fit
KEY_PREFIX = "rag"
_KEY_ID = re.compile(r"[0-9a-f]{8}")
# The commonest passwords long enough to pass the length rule (from the public breach lists);
# compared case-folded.
COMMON_PASSWORDS = frozenset(
    {
        "0000000000",
        "0123456789",
        "0987654321",
        "1111111111",
        "1234567890",
        "12345678910",
        "123456789a",
        "123456789q",
        "1234qwer!@#$",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abcdefghij",
        "administrator",
        "changeme123",
        "iloveyou12",
        "letmein123",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "qwertyuiop",
        "qwertyuiop123",
        "welcome123",
    }
)
T = TypeVar("T")
Users = dict[str, dict[str, Any]]  # name -> {"hash", "groups", "admin", "keys"}, as stored


class Key(NamedTuple):
    """An API key as listed: its ``id`` (the 8 hex digits after ``rag-``) and when it was made
    (``created``, ISO 8601 UTC); never the key itself."""

    id: str
    created: str


class People:
    """The users of ``path`` (a users.json; absent: no users yet), or of memory only when
    ``path`` is None (``People.legacy``). ``hasher``: argon2's parameters (tests pass cheap
    ones); hashes made with other parameters are remade at the next right password."""

    def __init__(self, path: Path | None, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self.hasher = hasher or PasswordHasher()
        self._cache: tuple[tuple[int, int, int] | None, Users] = (None, {})
        self._memory_lock = threading.Lock()  # writers of a store kept in memory only
        self._dummy: str | None = None

    @classmethod
    def legacy(
        cls, pairs: Iterable[tuple[str, str]], hasher: PasswordHasher | None = None
    ) -> People:
        """Plain users (no groups, not admins) from the old ``--auth user:pass,...`` pairs,
        kept in memory and never written to disk. Their names and passwords are taken as
        given: the flag accepted any, and keeps working."""
        people = cls(None, hasher)
        users = {name: _record(people.hasher.hash(password)) for name, password in pairs}
        people._cache = (None, users)
        return people

    def __repr__(self) -> str:
        where = self.path.name if self.path else "memory"
        return f"People({where}, {len(self)} users)"

    def __len__(self) -> int:
        return len(self._users())

    def __bool__(self) -> bool:
        """Whether there is anyone to log in as."""
        return len(self) > 0

    # Reading

    def get(self, name: str) -> Caller | None:
        """The user ``name`` (exactly, case counts), or None."""
        record = self._users().get(name)
        return None if record is None else _caller(name, record)

    def list(self) -> list[Caller]:
        """Every user, sorted by name."""
        return [_caller(name, record) for name, record in sorted(self._users().items())]

    def groups(self) -> set[str]:
        """Every group some user belongs to."""
        return {group for record in self._users().values() for group in record["groups"]}

    def keys(self, name: str) -> list[Key]:
        """The API keys of ``name``, oldest first; AccessError if there is no such user."""
        record = _known(self._users(), name)
        return [Key(key["id"], key["created"]) for key in record["keys"]]

    # Changing

    def add(
        self, name: str, password: str, groups: Iterable[str] = (), admin: bool = False
    ) -> Caller:
        """A new user; AccessError for a bad or taken name (also one differing only in case),
        a weak password or a bad group name."""
        check_name(name)
        check_password(password, name)
        record = _record(self.hasher.hash(password), clean_groups(groups), admin)

        def change(users: Users) -> Caller:
            clash = next((known for known in users if known.casefold() == name.casefold()), None)
            if clash is not None:
                taken = "is taken" if clash == name else f"is taken as {clash!r}"
                raise AccessError(f"the user name {name!r} {taken}")
            users[name] = record
            return _caller(name, record)

        return self._update(change)

    def set_password(self, name: str, password: str) -> None:
        """Give ``name`` a new password (checked like ``add``'s)."""
        check_password(password, name)
        hashed = self.hasher.hash(password)
        self._update(lambda users: _known(users, name).update(hash=hashed))

    def change(
        self,
        name: str,
        add_groups: Iterable[str] = (),
        remove_groups: Iterable[str] = (),
        admin: bool | None = None,
    ) -> Caller:
        """``name`` with ``add_groups`` joined, ``remove_groups`` left (not being in one is
        fine) and, unless None, ``admin`` set."""
        added, removed = clean_groups(add_groups), clean_groups(remove_groups)

        def change(users: Users) -> Caller:
            record = _known(users, name)
            record["groups"] = sorted((set(record["groups"]) | set(added)) - set(removed))
            if admin is not None:
                record["admin"] = admin
            return _caller(name, record)

        return self._update(change)

    def remove(self, name: str) -> Caller:
        """Remove ``name`` and their API keys; the user as they were."""

        def change(users: Users) -> Caller:
            _known(users, name)
            return _caller(name, users.pop(name))

        return self._update(change)

    # Logging in

    def verify(self, name: str, password: str) -> Caller | None:
        """The user ``name`` if ``password`` is theirs, else None. An unknown name costs one
        hash as well, so the time taken does not tell which names exist."""
        record = self._users().get(name)
        if record is None:
            self._matches(self._dummy_hash(), password)
            return None
        if not self._matches(record["hash"], password):
            return None
        if self.hasher.check_needs_rehash(record["hash"]):
            self._rehash(name, record["hash"], password)
        return _caller(name, record)

    def new_key(self, name: str) -> str:
        """A new API key for ``name``, ``rag-<8 hex id>-<secret>``: returned this once, kept
        only as its SHA-256 digest."""
        secret = secrets.token_urlsafe(32)

        def change(users: Users) -> str:
            record = _known(users, name)
            taken = {key["id"] for other in users.values() for key in other["keys"]}
            key_id = secrets.token_hex(4)
            while key_id in taken:  # ids name one key across all users (by_key, revoke)
                key_id = secrets.token_hex(4)
            key = f"{KEY_PREFIX}-{key_id}-{secret}"
            record["keys"].append({"id": key_id, "digest": _digest(key), "created": utc_now()})
            return key

        return self._update(change)

    def revoke_key(self, name: str, key_id: str) -> None:
        """Revoke the key ``key_id`` of ``name``; AccessError if they have none of that id."""
        if not _KEY_ID.fullmatch(key_id):  # never echoed: it may be a whole key pasted
            raise AccessError("a key id is the 8 hex digits after 'rag-', as `user list` shows")

        def change(users: Users) -> None:
            record = _known(users, name)
            kept = [key for key in record["keys"] if key["id"] != key_id]
            if len(kept) == len(record["keys"]):
                raise AccessError(f"{name!r} has no API key {key_id!r}")
            record["keys"] = kept

        self._update(change)

    def by_key(self, key: str) -> Caller | None:
        """The user whose API key ``key`` is, or None (a wrong, revoked or malformed key, or
        the key of a removed user)."""
        prefix, _, rest = key.partition("-")
        key_id = rest.partition("-")[0]
        if prefix != KEY_PREFIX or not key_id:
            return None
        digest = _digest(key)
        for name, record in self._users().items():
            for stored in record["keys"]:
                if stored["id"] == key_id and hmac.compare_digest(stored["digest"], digest):
                    return _caller(name, record)
        return None

    # The file

    def _users(self) -> Users:
        """The users as last written, reread when the file changed (readers take no lock)."""
        if self.path is None:
            return self._cache[1]
        signature = _signature(self.path)
        cached_signature, users = self._cache
        if signature != cached_signature:
            users = _read(self.path) if signature else {}
            self._cache = (signature, users)  # one assignment: threads see a matching pair
        return users

    def _update(self, change: Callable[[Users], T]) -> T:
        """Apply ``change`` to a fresh copy of the users and store the result, one writer at a
        time across processes; nothing is stored if ``change`` raises."""
        if self.path is None:
            with self._memory_lock:
                users = copy.deepcopy(self._cache[1])
                result = change(users)
                self._cache = (None, users)
                return result
        from rag.index.durable import writer_lock  # rag.index's package pulls in torch

        with writer_lock(self.path.parent):
            # Always from disk under the lock: an inode reused within one mtime tick would
            # otherwise pass for the version cached.
            users = _read(self.path) if self.path.exists() else {}
            result = change(users)
            _store(self.path, users)
            self._cache = (_signature(self.path), users)
            return result

    def _matches(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:  # made with this store's parameters, so it costs the same
            self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def _rehash(self, name: str, old_hash: str, password: str) -> None:
        """Remake the hash of ``name`` with the current parameters, unless it changed since."""
        new_hash = self.hasher.hash(password)

        def change(users: Users) -> None:
            record = users.get(name)
            if record is not None and record["hash"] == old_hash:
                record["hash"] = new_hash

        try:
            self._update(change)
        except AccessError as error:  # the old hash still works: the login goes on
            logger.warning("the password hash of %r was not renewed: %s", name, error)


def check_name(name: str) -> None:
    """AccessError unless ``name`` is 1-64 letters, digits, ``.``, ``_``, ``-`` or ``@``.

    >>> check_name("ana.lopez@example.org")
    >>> check_name("ana lopez")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rag.errors.AccessError: bad user name 'ana lopez': a name is 1-64 letters, digits, ...
    """
    if not _NAME.fullmatch(name):
        raise AccessError(
            f"bad user name {name!r}: a name is 1-64 letters, digits, '.', '_', '-' or '@' "
            "(an e-mail address fits)"
        )


def check_password(password: str, name: str) -> None:
    """AccessError, one line and never quoting it, unless ``password`` is strong enough: at
    least MIN_PASSWORD_LENGTH characters, not containing the user name, not a common password.

    >>> check_password("correct horse battery", "ana")
    >>> check_password("ana-2024-xyz", "ana")
    Traceback (most recent call last):
    rag.errors.AccessError: the password must not contain the user name
    """
    folded = password.casefold()
    if not password:
        reason = "a password is needed"
    elif len(password) < MIN_PASSWORD_LENGTH:
        reason = f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters"
    elif name.casefold() in folded:
        reason = "the password must not contain the user name"
    elif folded in COMMON_PASSWORDS:
        reason = "the password is one of the commonest; choose another"
    elif len(set(password)) <= 2:
        reason = "the password repeats one or two characters; choose another"
    else:
        return
    raise AccessError(reason)


def clean_groups(raw: Iterable[str]) -> list[str]:
    """Group names as stored (written like tags: case-folded), sorted, without repeats.

    >>> clean_groups(["Finance", "hr", "finance"])
    ['finance', 'hr']
    """
    groups = set()
    for group in raw:
        try:
            groups.add(clean_tag(group))
        except TagError:
            raise AccessError(
                f"bad group {group!r}: a group is 1-{MAX_TAG_LENGTH} letters, digits, '-', "
                "'_', '.' or ':', starting with a letter or digit (no spaces)"
            ) from None
    return sorted(groups)


def utc_now() -> str:
    """Now, ISO 8601 in UTC to the second: ``2025-01-31T12:00:00Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(hashed: str, groups: Iterable[str] = (), admin: bool = False) -> dict[str, Any]:
    return {"hash": hashed, "groups": list(groups), "admin": admin, "keys": []}


def _caller(name: str, record: dict[str, Any]) -> Caller:
    return Caller(name, frozenset(record["groups"]), bool(record["admin"]))


def _known(users: Users, name: str) -> dict[str, Any]:
    if name not in users:
        raise AccessError(f"no user is named {name!r}")
    return users[name]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime in ns, size) of ``path``, None if absent: a write renames a new file in,
    so the inode changes even within one tick of a coarse clock."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


def _read(path: Path) -> Users:
    """The users of ``path``; AccessError naming what is wrong with a file this version cannot
    read (the message names the file, never its folder)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AccessError(f"{path.name} cannot be read: {error.strerror}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AccessError(f"{path.name} is damaged (not JSON); restore it from a backup") from error
    if not isinstance(data, dict) or "version" not in data:
        raise AccessError(f"{path.name} is not a users file (no version header)")
    if data["version"] != VERSION:
        raise AccessError(
            f"{path.name} has format version {data['version']!r}; this app reads version "
            f"{VERSION} (a newer app wrote it?)"
        )
    users = data.get("users")
    if not isinstance(users, dict) or not all(map(_well_formed, users.values())):
        raise AccessError(f"{path.name} is damaged (a user lacks a hash, groups, admin or keys)")
    return users


def _well_formed(record: object) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("hash"), str)
        and isinstance(record.get("groups"), list)
        and isinstance(record.get("admin"), bool)
        and isinstance(record.get("keys"), list)
    )


def _store(path: Path, users: Users) -> None:
    text = json.dumps({"version": VERSION, "users": users}, indent=2) + "\n"
    try:
        _write_private(path, text)
    except OSError as error:
        raise AccessError(f"{path.name} cannot be written: {error.strerror}") from error


def _write_private(path: Path, text: str) -> None:
    """``atomic_write`` with the file created 0600 (its temporary file too, so the hashes are
    never readable by others, not even for a moment): write, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    from rag.index.durable import fsync_dir

    fsync_dir(path.parent)
