"""/v1 and MCP over the wire, each request acting as the person whose key it carries: the real
app (tiny models) with a users store, ann's finance document shared with her group, bob's
slides private to him. A person's key lists, scopes, searches and reads only what they may
read; another's document is "not found"; a service key (RAG_API_KEYS) acts as an admin; with
users in the store, no key is no entry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import openai
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from tests.helpers import ROOT, SAMPLES
from tests.helpers.library import FINANCE, KEY, SLIDES
from tests.helpers.servers import app_env, running_server

pytestmark = [pytest.mark.models, pytest.mark.processes]  # an app server

PASSWORD = "a long enough secret"


def cli(settings: dict, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "app.py", *args],
        cwd=ROOT,
        env={**os.environ, **settings},
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def team(tiny_models, tmp_path_factory):
    """(base URL, {person: key}) of a served library: ann (finance) owns FINANCE, shared with
    finance; bob owns SLIDES, private; cat is in finance too; dan in no group."""
    folder = tmp_path_factory.mktemp("keys")
    settings = {**app_env(tiny_models, folder / "data"), "RAG_API_KEYS": KEY}
    for name, groups in [("ann", ["finance"]), ("bob", []), ("cat", ["finance"]), ("dan", [])]:
        joined = [option for group in groups for option in ("--group", group)]
        cli(settings, "user", "add", name, *joined, "--password-stdin", stdin=PASSWORD + "\n")
    keys = {name: cli(settings, "user", "key", name) for name in ("ann", "bob", "cat", "dan")}
    for name, owner, visibility in [
        (FINANCE, "ann", "group:finance"),
        (SLIDES, "bob", "private"),
    ]:
        path = str(SAMPLES / name)
        cli(settings, "index", path, "--owner", owner, "--visibility", visibility, "--tag", owner)
    with running_server(settings, log=folder / "server.log") as (url, _server):
        yield url, keys


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def test_v1_lists_each_persons_scopes(team):
    url, keys = team
    models = {name: [m.id for m in client(url, key).models.list()] for name, key in keys.items()}
    assert models["ann"] == models["cat"] == ["docs", "tag:ann"]
    assert models["bob"] == ["docs", "tag:bob"]
    assert models["dan"] == ["docs"]
    assert [m.id for m in client(url, KEY).models.list()] == ["docs", "tag:ann", "tag:bob"]


def test_v1_answers_from_and_cites_only_the_askers_documents(team):
    url, keys = team
    messages = [{"role": "user", "content": "What are the next steps?"}]
    for person, readable in [("ann", {FINANCE}), ("bob", {SLIDES}), ("cat", {FINANCE})]:
        answer = client(url, keys[person]).chat.completions.create(
            model="docs", messages=messages, max_tokens=4
        )
        pages = answer.model_extra["pages"]
        assert pages and {page["name"] for page in pages} <= readable, (person, pages)
    with pytest.raises(openai.NotFoundError) as refused:
        client(url, keys["ann"]).chat.completions.create(
            model=f"doc:{SLIDES}", messages=messages, max_tokens=4
        )
    assert "no document with the id or name" in str(refused.value)
    with pytest.raises(openai.BadRequestError, match="no documents are indexed yet"):
        client(url, keys["dan"]).chat.completions.create(model="docs", messages=messages)


def test_with_users_no_key_is_no_entry(team):
    url, _ = team
    response = httpx.get(f"{url}/v1/models", timeout=30)
    assert response.status_code == 401
    response = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer rag-x"})
    assert response.status_code == 401


def tool_calls(url: str, key: str, calls: list[tuple[str, dict]]) -> list:
    async def run():
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            streamablehttp_client(f"{url}/gradio_api/mcp/", headers=headers) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return [await session.call_tool(name, arguments) for name, arguments in calls]

    return asyncio.run(run())


def test_mcp_tools_act_as_the_keys_person(team):
    url, keys = team
    listed, searched, page = tool_calls(
        url,
        keys["cat"],
        [
            ("list_documents", {}),
            ("search_documents", {"question": "next steps", "top_k": 10}),
            ("get_page", {"document": SLIDES, "page": 1}),
        ],
    )
    assert FINANCE in listed.content[0].text and SLIDES not in listed.content[0].text
    assert SLIDES not in searched.content[0].text and FINANCE in searched.content[0].text
    assert page.isError and "no document with the id or name" in page.content[0].text
    (own,) = tool_calls(url, keys["bob"], [("get_page", {"document": SLIDES, "page": 1})])
    assert not own.isError and own.content[0].type == "image"
