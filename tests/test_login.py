"""The web app's sign-in and page files, without a server: whom a name acts for in each way of
signing in, whose proxy is believed, how failed logins are slowed, and which page file is
served to whom (``ui.login``, ``ui.pagefiles``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from PIL import Image

from rag import ADMIN, Caller, ConfigError, DocumentNotFoundError, People
from ui.login import FREE_FAILURES, MAX_WAIT_S, Login, Throttle, parse_proxies
from ui.pagefiles import PageFiles, token_of

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only


@pytest.fixture
def people(tmp_path) -> People:
    store = People(tmp_path / "users.json", CHEAP)
    store.add("ana", "correct-horse-1", ["red"])
    store.add("boss", "correct-horse-2", admin=True)
    return store


def request(host: str, **headers: str) -> SimpleNamespace:
    return SimpleNamespace(client=SimpleNamespace(host=host), headers=headers)


def test_whom_a_name_acts_for_in_each_way_of_signing_in(people, tmp_path):
    assert Login(People(tmp_path / "none.json")).caller(None) is ADMIN  # no login: as before
    legacy = People.legacy([("old", "pw")], CHEAP)
    login = Login(people, legacy)
    assert login.mode == "password" and login.launch_options()["auth"] == login.check
    assert login.caller("ana") == Caller("ana", frozenset({"red"}))
    assert login.caller("old") == Caller("old")  # --auth: a plain user
    assert login.caller("gone") is None and login.caller(None) is None
    assert login.verify("ana", "correct-horse-1") and not login.verify("ana", "pw")
    assert login.verify("old", "pw") and not login.verify("old", "wrong")
    people.change("ana", add_groups=["green"])  # applies at the next request
    assert login.caller("ana").groups == {"red", "green"}
    people.remove("ana")
    assert login.caller("ana") is None  # removed: refused, session or not


def test_people_added_while_no_login_runs_turn_everyone_away_until_a_restart(tmp_path):
    store = People(tmp_path / "users.json", CHEAP)
    login = Login(store)
    assert login.mode == "off" and login.caller(None) is ADMIN
    store.add("ana", "correct-horse-1")
    assert login.caller(None) is None and login.requester({"type": "http"}) is None
    restarted = Login(store)
    assert restarted.mode == "password" and restarted.caller("ana") == Caller("ana")


def test_the_header_is_believed_from_trusted_proxies_only(people):
    login = Login(people, header="X-User", proxies=parse_proxies("127.0.0.1, 10.0.0.0/8"))
    assert login.mode == "header" and "auth_dependency" in login.launch_options()
    assert login.header_user(request("10.2.3.4", **{"X-User": "ana"})) == "ana"
    assert login.header_user(request("192.168.1.9", **{"X-User": "ana"})) is None
    assert login.header_user(request("127.0.0.1")) is None
    assert login.caller("boss").admin and login.caller("stranger") == Caller("stranger")
    with pytest.raises(ConfigError, match="'nowhere' is not an address"):
        parse_proxies("127.0.0.1,nowhere")


def test_failed_logins_wait_longer_each_time_and_a_success_clears_them():
    now = [1000.0]
    throttle = Throttle(clock=lambda: now[0])
    for _ in range(FREE_FAILURES):
        assert throttle.wait("a") == 0
        throttle.failed("a")
    waits = []
    for _ in range(8):
        waits.append(throttle.wait("a"))
        now[0] += waits[-1]
        throttle.failed("a")
    assert waits == [1, 2, 4, 8, 16, MAX_WAIT_S, MAX_WAIT_S, MAX_WAIT_S]
    assert throttle.wait("b") == 0  # another address
    now[0] += 15 * 60 + 1  # the window passed: forgotten
    assert throttle.wait("a") == 0
    throttle.failed("a")
    throttle.succeeded("a")
    assert not throttle.attempts("a").failures


class Collection:
    """What the page files ask of a pipeline: who acts, and whether they may read a
    document (``readers``: doc id -> the names who may)."""

    def __init__(self, readers: dict[str, set[str]], caller: Caller = ADMIN) -> None:
        self.readers, self.caller = readers, caller

    def acting_for(self, caller: Caller) -> Collection:
        return Collection(self.readers, caller)

    def find(self, doc_id: str):
        if self.caller.name not in self.readers.get(doc_id, set()):
            raise DocumentNotFoundError(f"no document with the id or name {doc_id!r}")


def test_a_page_file_serves_its_own_person_while_they_may_read_it(tmp_path):
    files = PageFiles(limit=3, folder=tmp_path)
    readers = {"d1": {"ana", "ben"}}
    ana, ben = Caller("ana"), Caller("ben")
    library = Collection(readers)
    drawn = files.publish(Image.new("RGB", (4, 4)), "d1", "view 1", "ana", library.acting_for(ana))
    name = drawn.rsplit("/", 1)[1]
    assert token_of(name) and name.startswith("view-1.")
    assert files.allows(name, ana) and not files.allows(name, ben)  # his own URLs only
    assert not files.allows(name, None)
    readers["d1"].discard("ana")  # made private to someone else: refused at once
    assert not files.allows(name, ana)
    with pytest.raises(DocumentNotFoundError):
        files.publish(Image.new("RGB", (4, 4)), "d1", "view", "ana", library.acting_for(ana))
    made_up = "view-1." + "x" * 32 + ".png"
    assert files.allows(made_up, ana) is False and files.allows("image.png", ana) is None
    page = tmp_path / "page-0001.png"
    Image.new("RGB", (4, 4)).save(page)
    first = files.publish(page, "d1", "page 1", "ben", library.acting_for(ben))
    assert files.publish(page, "d1", "page 1", "ben", library.acting_for(ben)) == first
    for _ in range(3):  # the registry is bounded: the oldest are forgotten, with their files
        files.publish(Image.new("RGB", (4, 4)), "d1", "v", "ben", library.acting_for(ben))
    assert not files.allows(first.rsplit("/", 1)[1], ben)
    assert len(list(tmp_path.glob("*.*.png"))) == 3
