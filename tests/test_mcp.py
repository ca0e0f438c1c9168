"""The MCP tools with the official ``mcp`` client (streamable HTTP) against the real app (tiny
models) on 127.0.0.1, behind an API key: the tools listed, each called, the content types, and
bad arguments answered as one-line tool errors."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from PIL import Image

from tests.helpers.library import FINANCE, KEY, SLIDES, served_library
from ui.tools import NAMES

pytestmark = [pytest.mark.models, pytest.mark.processes]  # an app server


@pytest.fixture(scope="module")
def mcp_url(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mcp")
    with served_library(tiny_models, folder) as url:
        yield f"{url}/gradio_api/mcp/"


def session_calls(url: str, calls: list[tuple[str, dict]], key: str = KEY):
    """(the tools listed, each call's result) in one MCP session."""

    async def run():
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            streamablehttp_client(url, headers=headers) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = (await session.list_tools()).tools
            return tools, [await session.call_tool(name, arguments) for name, arguments in calls]

    return asyncio.run(run())


def text_of(result) -> str:
    assert not result.isError, result.content
    assert result.content[0].type == "text"
    return result.content[0].text


def error_of(result) -> str:
    assert result.isError
    (content,) = result.content
    assert content.type == "text" and "\n" not in content.text and "Traceback" not in content.text
    return content.text


def test_the_tools_are_listed_with_typed_described_arguments(mcp_url):
    tools, _ = session_calls(mcp_url, [])
    by_name = {tool.name: tool for tool in tools}
    assert sorted(by_name) == sorted(NAMES)  # the app's other API endpoints are not tools
    search = by_name["search_documents"].inputSchema
    assert search["required"] == ["question"]
    assert search["properties"]["question"]["type"] == "string"
    assert search["properties"]["top_k"]["type"] == "integer"
    assert all(p.get("description") for p in search["properties"].values())
    page = by_name["get_page"].inputSchema
    assert page["required"] == ["document"] and page["properties"]["page"]["type"] == "integer"
    assert all(tool.description for tool in tools)


def test_each_tool_called(mcp_url):
    _, (listing, tagged, found, asked, page, heatmap) = session_calls(
        mcp_url,
        [
            ("list_documents", {}),
            ("list_documents", {"tag": "finance"}),
            ("search_documents", {"question": "revenue 2024", "top_k": 2, "tags": ["finance"]}),
            ("ask_documents", {"question": "What was the revenue?", "documents": [SLIDES]}),
            ("get_page", {"document": FINANCE, "page": 2}),
            ("get_page", {"document": FINANCE, "page": 1, "question": "revenue"}),
        ],
    )
    documents = json.loads(text_of(listing))
    assert {d["name"] for d in documents} == {FINANCE, SLIDES}
    assert [d["name"] for d in json.loads(text_of(tagged))] == [FINANCE]

    hits = json.loads(text_of(found))
    assert len(hits) == 2 and {h["name"] for h in hits} == {FINANCE}
    assert all({"doc_id", "page", "score", "citation", "snippet"} <= set(h) for h in hits)
    assert any("Revenue" in h["snippet"] for h in hits)  # the page's own words

    answer = json.loads(text_of(asked))
    assert isinstance(answer["answer"], str) and answer["searched"] == "What was the revenue?"
    assert {p["name"] for p in answer["pages"]} == {SLIDES}

    for result in (page, heatmap):
        assert not result.isError
        image, *captions = result.content
        assert image.type == "image" and image.mimeType == "image/png"
        picture = Image.open(io.BytesIO(base64.b64decode(image.data)))
        assert picture.width > 0 and picture.height > 0
        assert any(c.type == "text" and FINANCE in c.text for c in captions)
    assert "score" in heatmap.content[-1].text  # drawn for the question


def test_bad_arguments_are_one_line_errors(mcp_url):
    _, results = session_calls(
        mcp_url,
        [
            ("search_documents", {}),
            ("search_documents", {"question": 5}),
            ("search_documents", {"question": "x" * 100_000}),
            ("search_documents", {"question": "revenue", "top_k": 0}),
            ("ask_documents", {"question": "revenue", "tags": ["nope"]}),
            ("ask_documents", {"question": "revenue", "documents": ["missing.pdf"]}),
            ("list_documents", {"tag": "nope"}),
            ("get_page", {"document": FINANCE, "page": 9}),
            ("get_page", {"document": "missing.pdf", "page": 1}),
            ("get_page", {"document": FINANCE, "page": "two"}),
            ("delete", {"doc": FINANCE}),  # an API endpoint of the app, but not a tool
            ("list_documents", {}),
        ],
    )
    *errors, listing = results
    said = [error_of(result) for result in errors]
    assert "required" in said[0] and "question" in said[0]
    assert "is not of type 'string'" in said[1]
    assert "100,000 characters" in said[2]
    assert "top_k" in said[3]
    assert "no document is tagged 'nope'" in said[4] and "'nope'" in said[6]
    assert "missing.pdf" in said[5] and "missing.pdf" in said[8]
    assert "page 9 is out of range" in said[7] and "3 pages" in said[7]
    assert "'two' is not of type 'integer'" in said[9]
    assert "delete" in said[10]
    assert {d["name"] for d in json.loads(text_of(listing))} == {FINANCE, SLIDES}  # unchanged


def test_a_wrong_key_is_refused(mcp_url):
    with pytest.raises(BaseException) as caught:  # the client's task group wraps the 401
        session_calls(mcp_url, [], key="wrong")
    assert "401" in repr(caught.value) or "Unauthorized" in repr(caught.value)
