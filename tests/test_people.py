"""The users store (rag/people.py) and `app.py user ...`: argon2 hashes, strong passwords, API
keys kept as digests, the old --auth pairs in memory, and writers in several processes."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

import app
from rag.access import Caller
from rag.errors import AccessError
from rag.people import People
from tests.helpers import ROOT
from tests.helpers.processes import FAST

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # argon2id, test speed
STRONGER = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)  # CHEAP's hashes: renewed
GOOD = "correct horse battery"
KEY = re.compile(r"rag-([0-9a-f]{8})-[\w-]{43}")


@pytest.fixture
def people(tmp_path) -> People:
    return People(tmp_path / "users.json", CHEAP)


class CountingHasher(PasswordHasher):
    """Counts the hashes checked, so a test can see an unknown name cost one as well."""

    checked = 0

    def verify(self, hash, password):
        self.checked += 1
        return super().verify(hash, password)


# The store


def test_users_round_trip_through_the_file(people, tmp_path):
    people.add("bob", GOOD)
    made = people.add("alice", GOOD, groups=["Finance", "hr", "finance"], admin=True)
    assert made == Caller("alice", frozenset({"finance", "hr"}), admin=True)

    again = People(tmp_path / "users.json", CHEAP)  # another process's view
    assert [caller.name for caller in again.list()] == ["alice", "bob"]
    assert again.get("alice") == made and again.get("Alice") is None
    assert again.groups() == {"finance", "hr"}
    assert len(again) == 2 and again

    changed = again.change("alice", add_groups=["Legal"], remove_groups=["hr", "absent"])
    assert changed.groups == {"finance", "legal"} and changed.admin
    assert again.change("alice", admin=False).admin is False
    assert people.get("alice") == Caller("alice", frozenset({"finance", "legal"}))  # reread

    assert people.remove("bob") == Caller("bob")
    assert [caller.name for caller in again.list()] == ["alice"]


def test_no_file_is_no_users(tmp_path):
    people = People(tmp_path / "users.json", CHEAP)
    assert len(people) == 0 and not people and people.list() == [] and people.groups() == set()
    assert people.verify("alice", GOOD) is None and people.by_key("rag-00000000-x") is None
    assert list(tmp_path.iterdir()) == []  # reading writes nothing


def test_the_file_is_private_versioned_and_holds_no_password(people, tmp_path):
    people.add("alice", GOOD)
    path = tmp_path / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["version"] == 1
    assert GOOD not in path.read_text()
    assert sorted(entry.name for entry in tmp_path.iterdir()) == [".lock", "users.json"]


def test_hashes_are_argon2id_and_salted(people, tmp_path):
    people.add("alice", GOOD)
    people.add("bob", GOOD)
    users = json.loads((tmp_path / "users.json").read_text())["users"]
    first, second = users["alice"]["hash"], users["bob"]["hash"]
    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert first != second  # the same password, another salt


def test_verify_right_wrong_and_unknown(tmp_path):
    hasher = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    people = People(tmp_path / "users.json", hasher)
    people.add("alice", GOOD, groups=["hr"])
    assert people.verify("alice", GOOD) == Caller("alice", frozenset({"hr"}))
    assert people.verify("alice", GOOD + "!") is None
    assert people.verify("alice", "") is None
    assert people.verify("Alice", GOOD) is None  # names are case-sensitive
    before = hasher.checked
    assert people.verify("nobody", GOOD) is None
    assert hasher.checked == before + 1  # an unknown name costs a hash too


def test_a_hash_of_old_parameters_is_remade_at_login(people, tmp_path):
    people.add("alice", GOOD)
    upgraded = People(tmp_path / "users.json", STRONGER)
    assert upgraded.verify("alice", GOOD) == Caller("alice")
    stored = json.loads((tmp_path / "users.json").read_text())["users"]["alice"]["hash"]
    assert "m=16,t=2,p=1" in stored and not STRONGER.check_needs_rehash(stored)
    assert upgraded.verify("alice", GOOD) and people.verify("alice", GOOD)


def test_a_hash_not_renewed_does_not_stop_the_login(people, tmp_path, monkeypatch, caplog):
    people.add("alice", GOOD)

    def refuse(path, text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("rag.people._write_private", refuse)
    stronger = People(tmp_path / "users.json", STRONGER)
    assert stronger.verify("alice", GOOD) == Caller("alice")
    assert "users.json cannot be written: Permission denied" in caplog.text
    assert GOOD not in caplog.text
    with pytest.raises(AccessError, match=r"^users.json cannot be written: Permission denied$"):
        stronger.add("bob", GOOD)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "a password is needed"),
        ("s3cret!", "too short: at least 10 characters"),
        ("I-am-Alice-2024", "must not contain the user name"),
        ("Password123", "one of the commonest"),
        ("qwertyuiop", "one of the commonest"),
        ("1234567890", "one of the commonest"),
        ("abababababab", "repeats one or two characters"),
    ],
)
def test_weak_passwords_are_refused_in_one_line(people, password, reason):
    with pytest.raises(AccessError, match=reason) as refused:
        people.add("alice", password)
    message = str(refused.value)
    assert "\n" not in message and (not password or password not in message)
    assert people.get("alice") is None
    people.add("alice", GOOD)
    with pytest.raises(AccessError, match=reason):
        people.set_password("alice", password)
    assert people.verify("alice", GOOD)


@pytest.mark.parametrize("name", ["", "ana lopez", "a/b", "x" * 65, "tab\there", "ana\n"])
def test_bad_names_are_refused(people, name):
    with pytest.raises(AccessError, match="bad user name"):
        people.add(name, GOOD)


def test_names_fit_emails_and_refuse_a_case_clash(people):
    assert people.add("ana.lopez_x@example.org", GOOD).name
    people.add("Alice", GOOD)
    with pytest.raises(AccessError, match="'alice' is taken as 'Alice'"):
        people.add("alice", GOOD)
    with pytest.raises(AccessError, match=r"'Alice' is taken$"):
        people.add("Alice", GOOD)
    assert [caller.name for caller in people.list()] == ["Alice", "ana.lopez_x@example.org"]


def test_bad_groups_are_refused(people):
    with pytest.raises(AccessError, match="bad group 'q 3': a group is"):
        people.add("alice", GOOD, groups=["q 3"])
    people.add("alice", GOOD)
    with pytest.raises(AccessError, match="bad group"):
        people.change("alice", add_groups=["-x"])


@pytest.mark.parametrize(
    "act",
    [
        lambda people: people.set_password("nobody", GOOD),
        lambda people: people.change("nobody", add_groups=["hr"]),
        lambda people: people.remove("nobody"),
        lambda people: people.new_key("nobody"),
        lambda people: people.keys("nobody"),
        lambda people: people.revoke_key("nobody", "00000000"),
    ],
)
def test_an_unknown_user_is_named(people, act):
    people.add("alice", GOOD)
    with pytest.raises(AccessError, match=r"^no user is named 'nobody'$"):
        act(people)


def test_api_keys(people, tmp_path):
    people.add("alice", GOOD, groups=["hr"])
    people.add("bob", GOOD)
    key = people.new_key("alice")
    key_id = KEY.fullmatch(key).group(1)
    assert [entry.id for entry in people.keys("alice")] == [key_id]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", people.keys("alice")[0].created)
    text = (tmp_path / "users.json").read_text()
    assert key not in text and key.rsplit("-", 1)[1] not in text  # only the digest is kept

    assert People(tmp_path / "users.json", CHEAP).by_key(key) == Caller("alice", frozenset({"hr"}))
    for wrong in [key[:-1] + ("A" if key[-1] != "A" else "B"), key + "x", "", "rag-", key_id]:
        assert people.by_key(wrong) is None
    assert people.by_key(f"rag-{key_id}") is None

    second = people.new_key("alice")
    people.revoke_key("alice", key_id)
    assert people.by_key(key) is None and people.by_key(second)
    with pytest.raises(AccessError, match=f"'alice' has no API key '{key_id}'"):
        people.revoke_key("alice", key_id)
    with pytest.raises(AccessError, match="has no API key"):
        people.revoke_key("bob", KEY.fullmatch(second).group(1))  # not bob's

    with pytest.raises(AccessError, match="a key id is the 8 hex digits") as refused:
        people.revoke_key("alice", second)  # the whole key pasted: refused, never echoed
    assert second not in str(refused.value) and people.by_key(second)

    people.remove("alice")
    assert people.by_key(second) is None


def test_legacy_pairs_live_in_memory_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    people = People.legacy([("admin", "pw"), ("Ana Lopez", "secret")], CHEAP)  # as --auth took
    assert people.path is None and len(people) == 2
    assert people.verify("admin", "pw") == Caller("admin")  # plain: no groups, not admin
    assert people.verify("admin", "wrong") is None and people.verify("nobody", "pw") is None
    assert people.by_key(people.new_key("admin")) == Caller("admin")
    people.change("admin", add_groups=["hr"])
    assert people.get("admin").groups == {"hr"}
    assert list(tmp_path.iterdir()) == []


def test_repr_and_messages_name_no_secret(people, caplog):
    people.add("alice", GOOD)
    key = people.new_key("alice")
    people.verify("alice", GOOD)
    shown = repr(people) + "".join(record.getMessage() for record in caplog.records)
    assert GOOD not in shown and key not in shown and "argon2" not in shown
    assert repr(people) == "People(users.json, 1 users)"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{not json", "users.json is damaged \\(not JSON\\)"),
        ('{"users": {}}', "not a users file \\(no version header\\)"),
        ('{"version": 2, "users": {}}', "format version 2; this app reads version 1"),
        ('{"version": 1, "users": {"a": {"groups": []}}}', "users.json is damaged"),
    ],
)
def test_a_file_it_cannot_read_is_a_clear_error(tmp_path, text, error):
    (tmp_path / "users.json").write_text(text)
    people = People(tmp_path / "users.json", CHEAP)
    with pytest.raises(AccessError, match=error) as refused:
        people.verify("a", GOOD)
    assert str(tmp_path) not in str(refused.value)  # no folder of the server is named
    with pytest.raises(AccessError, match=error):
        people.add("bob", GOOD)
    assert (tmp_path / "users.json").read_text() == text  # left as it was


def add_users(path: str, prefix: str, count: int) -> None:
    """One writer process: ``count`` users, each added by a store opened afresh."""
    for number in range(count):
        People(Path(path), CHEAP).add(f"{prefix}{number}", GOOD)


@pytest.mark.processes
def test_writers_in_two_processes_lose_no_user(tmp_path):
    path = tmp_path / "users.json"
    spawn = multiprocessing.get_context("spawn")  # a clean interpreter, as a second app is
    writers = [spawn.Process(target=add_users, args=(str(path), p, 25)) for p in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    names = {caller.name for caller in People(path, CHEAP).list()}
    assert names == {f"{prefix}{number}" for prefix in "ab" for number in range(25)}
    assert [entry.name for entry in tmp_path.iterdir() if entry.suffix == ".tmp"] == []


# The CLI


def user(capsys, monkeypatch, data_dir: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """`app.py --data-dir DATA_DIR user ARGS`, in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = app.main(["--data-dir", str(data_dir), "user", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_manages_people(tmp_path, capsys, monkeypatch):
    def run(*args: str, stdin: str = "") -> tuple[int, str]:
        status, out, err = user(capsys, monkeypatch, tmp_path, *args, stdin=stdin)
        assert err == ""
        return status, out

    added = run("add", "alice", "--group", "HR", "--admin", "--password-stdin", stdin=GOOD + "\n")
    assert added == (0, "added alice  groups: hr  admin  keys: 0\n")
    assert run("add", "bob", "--password-stdin", stdin=f"{GOOD}\r\n")[0] == 0
    assert run("groups", "bob", "--add", "finance", "--add", "legal", "--remove", "x") == (
        0,
        "bob  groups: finance, legal  keys: 0\n",
    )
    status, key, note = user(capsys, monkeypatch, tmp_path, "key", "bob")
    assert status == 0 and KEY.fullmatch(key.strip())
    assert note == "a new API key for bob, shown this once: store it now\n"

    people = People(tmp_path / "users.json")
    assert people.verify("bob", GOOD) == Caller("bob", frozenset({"finance", "legal"}))
    assert people.by_key(key.strip()).name == "bob"

    status, listing = run("list", "--json")
    records = [json.loads(line) for line in listing.splitlines()]
    key_id = KEY.fullmatch(key.strip()).group(1)
    assert records == [
        {"name": "alice", "groups": ["hr"], "admin": True, "keys": []},
        {"name": "bob", "groups": ["finance", "legal"], "admin": False, "keys": [key_id]},
    ]
    assert run("list")[1].splitlines()[1] == "bob  groups: finance, legal  keys: 1"

    assert run("passwd", "bob", "--password-stdin", stdin="another fine phrase\n")[0] == 0
    assert people.verify("bob", "another fine phrase") and not people.verify("bob", GOOD)
    assert run("revoke", "bob", key_id) == (0, f"revoked the API key {key_id} of bob\n")
    assert people.by_key(key.strip()) is None
    assert run("groups", "alice", "--no-admin")[1] == "alice  groups: hr  keys: 0\n"
    assert (
        run("remove", "bob")[1] == "removed bob  groups: finance, legal  keys: 0 (keys revoked)\n"
    )
    assert [caller.name for caller in people.list()] == ["alice"]


@pytest.mark.parametrize(
    ("args", "stdin", "error"),
    [
        (["add", "carol", "--password-stdin"], "tiny\n", "the password is too short"),
        (["add", "carol"], "", "no terminal to ask the password on"),
        (["passwd", "nobody", "--password-stdin"], GOOD, "no user is named 'nobody'"),
        (["groups", "nobody", "--add", "hr"], "", "no user is named 'nobody'"),
        (["revoke", "nobody", "00000000"], "", "no user is named 'nobody'"),
        (["add", "a b", "--password-stdin"], GOOD, "bad user name 'a b'"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, args, stdin, error):
    status, out, err = user(capsys, monkeypatch, tmp_path, *args, stdin=stdin)
    assert (status, out) == (1, "")
    assert err.startswith(f"error: {error}") and err.count("\n") == 1
    assert not stdin.strip() or stdin.strip() not in err  # the password is not echoed


@pytest.mark.processes
def test_cli_as_a_process(tmp_path):
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "app.py", "--data-dir", str(tmp_path), "user", *args],
            input=stdin,
            cwd=ROOT,
            env={**os.environ, **FAST},
            capture_output=True,
            text=True,
            timeout=120,  # a hang guard
            check=False,
        )

    added = run("add", "ana@example.org", "--password-stdin", stdin=GOOD + "\n")
    assert (added.returncode, added.stdout) == (0, "added ana@example.org  groups: none  keys: 0\n")
    made = run("key", "ana@example.org")
    assert made.returncode == 0 and KEY.fullmatch(made.stdout.strip())
    assert made.stderr == "a new API key for ana@example.org, shown this once: store it now\n"
    assert People(tmp_path / "users.json").by_key(made.stdout.strip()).name == "ana@example.org"
    clash = run("add", "ANA@example.org", "--password-stdin", stdin=GOOD + "\n")
    assert clash.returncode == 1
    assert clash.stderr == "error: the user name 'ANA@example.org' is taken as 'ana@example.org'\n"
