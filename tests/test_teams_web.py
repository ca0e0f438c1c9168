"""A team's web app, served for real (``app.py serve``) and used through gradio_client and raw
HTTP: 20 people in 3 groups, documents private to one person, shared with each group, and
everyone's. Nobody ever receives a document, a page or a page URL they may not read; a page
URL works for its own person only, while they may read the page; failed logins are slowed;
single sign-on's header is believed from a trusted proxy only; the old --auth still logs in.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from rag import People, Pipeline, Settings
from tests.helpers import ROOT, SAMPLES, pdfs
from tests.helpers.servers import app_env, running_server

pytestmark = [pytest.mark.models, pytest.mark.processes]  # app servers

GROUPS = {"red": range(0, 7), "green": range(7, 14), "blue": range(14, 20)}
PEOPLE = [f"p{i:02d}" for i in range(20)]
# Each document: (owner, visibility).
DOCUMENTS = {
    "private-p00.pdf": ("p00", "private"),
    "red.pdf": ("p01", "group:red"),
    "green.pdf": ("p08", "group:green"),
    "blue.pdf": ("p15", "group:blue"),
    "everyone.pdf": ("p02", "everyone"),
    "red-then-private.pdf": ("p03", "group:red"),
}
LEGACY = ("legacy", "old-style-pass")
SSO_HEADER = "X-Forwarded-User"
PAGE_FILE = re.compile(r"\.[A-Za-z0-9_-]{32}\.png$")
TIMEOUT = 120  # s, for a raw request: 20 people's logins and questions share two cores


def password(name: str) -> str:
    return f"correct-horse-{name[::-1]}-battery"  # never containing the name


def group_of(name: str) -> str:
    return next(group for group, members in GROUPS.items() if int(name[1:]) in members)


def readable(name: str, documents: dict = DOCUMENTS) -> set[str]:
    """The documents ``name`` may read (none of them is an admin)."""
    return {
        doc
        for doc, (owner, shown) in documents.items()
        if owner == name or shown == "everyone" or shown == f"group:{group_of(name)}"
    }


@pytest.fixture(scope="module")
def team(tiny_models, tmp_path_factory):
    """(URL, data folder, environment, log) of a library app with a users store of 20 people
    and the documents of ``DOCUMENTS``, and --auth's legacy user too."""
    folder = tmp_path_factory.mktemp("team")
    env = {
        **app_env(tiny_models, folder / "data"),
        "RAG_AUDIT_LOG": str(folder / "audit.jsonl"),
        "GRADIO_TEMP_DIR": str(folder / "gradio"),  # where uploads land, to be looked at
    }
    pipeline = Pipeline(Settings.from_env(env))
    for group, members in GROUPS.items():
        for i in members:
            pipeline.people.add(PEOPLE[i], password(PEOPLE[i]), [group])
    copies = pdfs.distinct_copies(folder / "files", len(DOCUMENTS), SAMPLES / "expense_form.pdf")
    for path, (name, (owner, shown)) in zip(copies, DOCUMENTS.items(), strict=True):
        caller = pipeline.people.get(owner)
        result = pipeline.acting_for(caller).add_file(path, name=name, visibility=shown)
        assert result.status == "indexed", result.message
    log = folder / "server.log"
    with running_server(env, "--auth", ":".join(LEGACY), log=log) as (url, _server):
        yield url, folder, env, log


def client(url: str, name: str, **options) -> Client:
    return Client(url, auth=(name, password(name)), verbose=False, **options)


def cookies_of(url: str, name: str, secret: str | None = None) -> dict[str, str]:
    """A browser's cookies after logging in as ``name``."""
    login = {"username": name, "password": secret or password(name)}
    answer = httpx.post(f"{url}/login", data=login, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return dict(answer.cookies)


def fetch(url: str, cookies: dict | None = None, headers: dict | None = None) -> int:
    """The status of a GET of ``url`` with these cookies and headers."""
    answer = httpx.get(url, cookies=cookies or {}, headers=headers or {}, timeout=TIMEOUT)
    return answer.status_code


def page_url(image: dict, url: str) -> str:
    found = image["url"]
    assert PAGE_FILE.search(found), found  # a page file's unguessable name
    return found if found.startswith("http") else url + found


def use_the_app(url: str, name: str) -> dict:
    """What one person does: list, ask, open every page of the answer. Returns what came back
    (names, ids, titles, page URLs) for the caller to check."""
    person = client(url, name, download_files=False)
    listed = person.predict(api_name="/list")
    updates = list(person.submit("What is the total?", top_k=10, max_new_tokens=8, api_name="/ask"))
    final = updates[-1]
    pages = []
    for index in range(len(final["hits"])):
        image, title = person.predict(index, "whole question", True, api_name="/page")
        pages.append((title, page_url(image, url)))
    return {"listed": listed, "updates": updates, "pages": pages, "cookies": person.cookies}


def test_twenty_people_at_once_see_exactly_what_they_may_read(team):
    url, _folder, _env, _log = team
    started = time.monotonic()
    with ThreadPoolExecutor(len(PEOPLE)) as pool:
        results = dict(zip(PEOPLE, pool.map(lambda n: use_the_app(url, n), PEOPLE), strict=True))
    elapsed = time.monotonic() - started
    everything = {d["doc_id"]: d["name"] for r in results.values() for d in r["listed"]}
    for name, got in results.items():
        allowed = readable(name)
        assert {d["name"] for d in got["listed"]} == allowed, name
        assert all(d["owner"] == DOCUMENTS[d["name"]][0] for d in got["listed"])
        for update in got["updates"]:
            assert {h["name"] for h in update["hits"]} <= allowed, (name, update["hits"])
            assert {everything.get(h["doc_id"]) for h in update["hits"]} <= allowed
        assert {h["name"] for h in got["updates"][-1]["hits"]} == allowed  # every page found
        forbidden = set(DOCUMENTS) - allowed
        for title, _ in got["pages"]:
            assert not any(doc in title for doc in forbidden), (name, title)
            assert any(doc in title for doc in allowed)
    # Every page URL served its own person; to anyone else, or nobody, it is not there.
    for name, got in results.items():
        for title, link in got["pages"]:
            assert fetch(link, got["cookies"]) == 200
            assert fetch(link) in (401, 404)
            for other in ("p00", "p08", "p15"):  # one of each group
                if other != name:
                    assert fetch(link, results[other]["cookies"]) == 404, (name, other, title)
    assert elapsed < 600


def test_a_page_url_of_another_group_is_refused_guessed_copied_or_without_login(team):
    url, _folder, _env, _log = team
    red, green = client(url, "p01", download_files=False), client(url, "p08", download_files=False)
    red.predict("What is the total?", top_k=10, max_new_tokens=8, api_name="/ask")
    image, _title = red.predict(0, "whole question", False, api_name="/page")
    link = page_url(image, url)
    red_cookies, green_cookies = cookies_of(url, "p01"), cookies_of(url, "p08")
    assert fetch(link, red.cookies) == 200
    assert fetch(link, red_cookies) == 200  # the same person, logged in elsewhere
    assert fetch(link, green.cookies) == 404  # copied into another person's session
    assert fetch(link, green_cookies) == 404
    assert fetch(link) in (401, 404)  # no login at all
    assert fetch(link, {"access-token-x": "made-up"}) in (401, 404)
    # Guessed: the same place, another token; a token-shaped name anywhere.
    made_up = PAGE_FILE.sub(f".{secrets.token_urlsafe(24)}.png", link)
    assert made_up != link and fetch(made_up, red.cookies) == 404
    guessed = f"{url}/gradio_api/file=/tmp/gradio/abc/page-1.{secrets.token_urlsafe(24)}.png"
    assert fetch(guessed, red.cookies) == 404
    assert fetch(link.replace("/file=", "/file/"), green.cookies) == 404  # the older route
    dotted = link + "/x/%2e%2e"  # Gradio serves the page itself for this
    assert fetch(dotted, red.cookies) == 200 and fetch(dotted, green.cookies) == 404
    # Someone else's session hash gives nothing of its conversation.
    green.session_hash = red.session_hash
    with pytest.raises(AppError, match="Ask a question first"):
        green.predict(0, "whole question", False, api_name="/page")
    # Another's document can be neither deleted nor retagged; by id, it is not even there.
    red_ids = {d["name"]: d["doc_id"] for d in red.predict(api_name="/list")}
    with pytest.raises(AppError, match="no document with the id or name"):
        green.predict(red_ids["red.pdf"], api_name="/delete")
    with pytest.raises(AppError, match="only its owner or an admin may"):
        red.predict("everyone.pdf", api_name="/delete")  # readable, not theirs
    with pytest.raises(AppError, match="only its owner or an admin may"):
        red.predict("everyone.pdf", ["mine"], [], api_name="/tag")
    assert "red.pdf" in {d["name"] for d in red.predict(api_name="/list")}


def test_the_get_page_tool_through_gradios_api_hands_out_checked_page_files_too(team):
    url, _folder, _env, _log = team
    red, green = client(url, "p01", download_files=False), client(url, "p08", download_files=False)
    image, caption = red.predict("red.pdf", 1, "", api_name="/get_page")
    assert "red.pdf" in caption
    link = page_url(image, url)
    assert fetch(link, red.cookies) == 200
    assert fetch(link, green.cookies) == 404 and fetch(link) in (401, 404)
    with pytest.raises(AppError, match=r"no document with the id or name 'red\.pdf'"):
        green.predict("red.pdf", 1, "", api_name="/get_page")


def test_a_document_made_private_leaves_a_members_results_and_its_page_url_stops(team):
    url, _folder, env, _log = team
    member = client(url, "p05", download_files=False)  # red, not the owner (p03)
    hits = member.predict("What is the total?", top_k=10, max_new_tokens=8, api_name="/ask")["hits"]
    names = [h["name"] for h in hits]
    index = names.index("red-then-private.pdf")
    image, _title = member.predict(index, "whole question", True, api_name="/page")
    link = page_url(image, url)
    assert fetch(link, member.cookies) == 200
    owner = Pipeline(Settings.from_env(env))
    owner = owner.acting_for(owner.people.get("p03"))
    owner.share("red-then-private.pdf", "private")  # as the CLI or the panel would
    try:
        assert fetch(link, member.cookies) == 404  # the page already shown: gone at once
        with pytest.raises(AppError, match=r"red-then-private.pdf has been deleted since"):
            member.predict(index, "whole question", True, api_name="/page")  # drawn again
        listed = {d["name"] for d in member.predict(api_name="/list")}
        assert "red-then-private.pdf" not in listed and "red.pdf" in listed
        again = member.predict("What is the total?", top_k=10, max_new_tokens=8, api_name="/ask")
        assert "red-then-private.pdf" not in {h["name"] for h in again["hits"]}
        owners = client(url, "p03", download_files=False)
        assert "red-then-private.pdf" in {d["name"] for d in owners.predict(api_name="/list")}
    finally:
        owner.share("red-then-private.pdf", "group:red")
    assert fetch(link, member.cookies) == 200  # readable again: the same URL serves again


def test_failed_logins_are_slowed_and_every_login_is_audited(team):
    url, folder, _env, _log = team
    # From a proxy on this machine (trusted): X-Forwarded-For names the client.
    address = "203.0.113.9"
    headers = {"X-Forwarded-For": address}

    def attempt(secret: str) -> tuple[int, float, httpx.Response]:
        started = time.monotonic()
        answer = httpx.post(
            f"{url}/login",
            data={"username": "p07", "password": secret},
            headers=headers,
            timeout=TIMEOUT,
        )
        return answer.status_code, time.monotonic() - started, answer

    quick = [attempt("wrong-guess-123") for _ in range(5)]
    assert [status for status, _, _ in quick] == [400] * 5
    status, waited, _ = attempt("wrong-guess-123")
    assert status == 400 and waited >= 0.9  # the 6th waits a second
    # While one attempt waits (2 s now), another from the same address is turned away.
    slow = {}
    waiting = threading.Thread(target=lambda: slow.update(result=attempt("wrong-again-123")))
    waiting.start()
    time.sleep(0.5)
    status, _, refused = attempt(password("p07"))
    waiting.join()
    assert status == 429 and int(refused.headers["retry-after"]) >= 1
    assert slow["result"][0] == 400 and slow["result"][1] >= 1.5
    # Others are not slowed; the right password, once its turn comes, logs in and clears it.
    assert attempt_elsewhere(url, "p08") == 200
    time.sleep(4.1)
    status, _, _ = attempt(password("p07"))
    assert status == 200
    status, waited, _ = attempt("wrong-guess-123")
    assert status == 400 and waited < 0.9
    events = [json.loads(line) for line in (folder / "audit.jsonl").read_text().splitlines()]
    logins = [e for e in events if e["event"] == "login" and e["address"] == address]
    assert [e["ok"] for e in logins if not e.get("throttled")][-2:] == [True, False]
    assert any(e.get("throttled") for e in logins) and all(e["who"] == "p07" for e in logins)
    assert any(e["event"] == "question" and e["who"] == "p05" for e in events)


def attempt_elsewhere(url: str, name: str) -> int:
    answer = httpx.post(
        f"{url}/login",
        data={"username": name, "password": password(name)},
        headers={"X-Forwarded-For": "198.51.100.4"},
        timeout=TIMEOUT,
    )
    return answer.status_code


def test_the_deprecated_auth_still_logs_in_as_a_plain_user(team):
    url, _folder, _env, log = team
    legacy = Client(url, auth=LEGACY, verbose=False)
    assert {d["name"] for d in legacy.predict(api_name="/list")} == {"everyone.pdf"}
    with pytest.raises(ValueError):
        Client(url, auth=("legacy", "wrong-password"), verbose=False)
    assert log.read_text().count("--auth (RAG_AUTH) is deprecated") == 1


@contextmanager
def sso_server(team, trusted: str):
    """A server on a copy of the team's library, signed in through SSO_HEADER from
    ``trusted`` proxies."""
    _url, folder, env, _log = team
    copy = folder / f"sso-{secrets.token_hex(4)}"
    shutil.copytree(Path(env["RAG_DATA_DIR"]), copy / "data")
    settings = {
        **env,
        "RAG_DATA_DIR": str(copy / "data"),
        "RAG_AUTH_HEADER": SSO_HEADER,
        "RAG_TRUSTED_PROXIES": trusted,
        "RAG_AUDIT_LOG": "",
    }
    with running_server(settings, log=copy / "server.log") as (sso_url, _server):
        yield sso_url


def test_single_sign_on_believes_the_header_from_a_trusted_proxy_only(team):
    with sso_server(team, "127.0.0.1, 10.0.0.0/8") as url:
        as_p08 = Client(url, headers={SSO_HEADER: "p08"}, verbose=False, download_files=False)
        assert {d["name"] for d in as_p08.predict(api_name="/list")} == readable("p08")
        hits = as_p08.predict("What is the total?", top_k=10, max_new_tokens=8, api_name="/ask")
        assert {h["name"] for h in hits["hits"]} == readable("p08")
        image, _ = as_p08.predict(0, "whole question", False, api_name="/page")
        link = page_url(image, url)
        assert fetch(link, headers={SSO_HEADER: "p08"}) == 200
        assert fetch(link, headers={SSO_HEADER: "p09"}) == 404  # same group, another person
        assert fetch(link, headers={SSO_HEADER: "p01"}) == 404
        assert fetch(link) in (401, 404)
        # A name the store does not know is a plain user: everyone's documents only.
        stranger = Client(url, headers={SSO_HEADER: "stranger"}, verbose=False)
        assert {d["name"] for d in stranger.predict(api_name="/list")} == {"everyone.pdf"}
        assert (
            httpx.get(f"{url}/gradio_api/info", timeout=TIMEOUT).status_code == 401
        )  # no header: nobody
    with sso_server(team, "10.1.2.3") as url:  # this machine is not the proxy
        header = {SSO_HEADER: "p00"}
        answer = httpx.get(f"{url}/gradio_api/info", headers=header, timeout=TIMEOUT)
        assert answer.status_code == 401
        with pytest.raises(ValueError):
            Client(url, headers={SSO_HEADER: "p00"}, verbose=False)


def test_an_upload_is_read_as_its_person_says_and_leaves_no_file_behind(team, tmp_path):
    url, folder, _env, _log = team
    (path,) = pdfs.distinct_copies(tmp_path, 1, SAMPLES / "expense_form.pdf")
    green = client(url, "p10")
    status, _table = green.predict([handle_file(str(path))], "", "group:green", api_name="/index")
    assert "doc0.pdf: indexed" in status
    assert list((folder / "gradio").rglob("*.pdf")) == []  # Gradio's copy: gone once indexed
    assert "doc0.pdf" in {d["name"] for d in client(url, "p11").predict(api_name="/list")}
    assert "doc0.pdf" not in {d["name"] for d in client(url, "p01").predict(api_name="/list")}
    status, _table = green.predict([handle_file(str(path))], "", "group:nobody", api_name="/index")
    assert "doc0.pdf: not added: no group is named 'nobody'" in status
    assert list((folder / "gradio").rglob("*.pdf")) == []
    red = client(url, "p01")  # without saying: only its owner reads it
    (other,) = pdfs.distinct_copies(tmp_path / "more", 1, SAMPLES / "expense_form.pdf")
    other = other.rename(other.with_name("mine.pdf"))
    red.predict([handle_file(str(other))], api_name="/index")
    mine = {d["name"]: d for d in red.predict(api_name="/list")}["mine.pdf"]
    assert (mine["owner"], mine["visibility"]) == ("p01", "private")
    assert "mine.pdf" not in {d["name"] for d in client(url, "p02").predict(api_name="/list")}


def test_public_mode_refuses_any_login_in_one_line(tiny_models, tmp_path):
    env = {**os.environ, **app_env(tiny_models, tmp_path / "data")}
    People(tmp_path / "data" / "users.json").add("ana", "correct-horse-1")
    for extra, more in (
        (["--auth", "a:b"], {"RAG_DATA_DIR": str(tmp_path / "empty")}),
        ([], {"RAG_DATA_DIR": str(tmp_path / "empty"), "RAG_AUTH_HEADER": SSO_HEADER}),
        ([], {}),  # users in users.json
    ):
        run = subprocess.run(
            [sys.executable, "app.py", "serve", "--public", *extra],
            check=False,
            cwd=ROOT,
            env={**env, **more},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 1, run.stderr
        assert run.stderr.strip().count("\n") == 0, run.stderr  # one line
        assert "logins (--auth, RAG_AUTH_HEADER, users in users.json) are for library mode" in (
            run.stderr
        )
