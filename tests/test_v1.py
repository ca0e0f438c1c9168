"""The OpenAI-compatible /v1 routes: checks of a request without a server, then the official
``openai`` client against the real app (tiny models) on 127.0.0.1, behind an API key."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import openai
import pytest

from rag import ADMIN, People
from tests.helpers.library import FINANCE, KEY, SLIDES, served_library
from tests.helpers.processes import wait_until
from ui.gate import MAX_BODY_BYTES, MAX_QUESTION_CHARS, Busy, Gate, KeyCheck, Keys
from ui.v1 import ApiError, parse, scope_of

QUEUE = 2  # RAG_MAX_QUEUE of the served app: what the line of waiting requests holds

# -- a request, checked (no server) ------------------------------------------------------------


def body(**fields) -> dict:
    return {"model": "docs", "messages": [{"role": "user", "content": "Revenue?"}], **fields}


def refusal(request: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse(request, 512)
    return caught.value


def test_the_last_message_is_the_question_and_the_earlier_ones_the_history():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Revenue?"},
        {"role": "assistant", "content": "63.8 M€ [annual_report.pdf p.1]"},
        {"role": "user", "content": [{"type": "text", "text": "and in 2023?"}]},
    ]
    call = parse(body(messages=messages, max_tokens=10_000), 512)
    assert call.question == "and in 2023?"
    assert [m["role"] for m in call.history] == ["user", "assistant"]  # the system one left out
    assert call.max_tokens == 512  # at most the server's own


@pytest.mark.parametrize(
    ("request_body", "status", "said"),
    [
        ([1, 2], 400, "JSON object"),
        ({"messages": []}, 400, "model"),
        (body(messages=[]), 400, "at least one message"),
        (body(messages="hi"), 400, "at least one message"),
        (body(messages=[{"role": "assistant", "content": "hi"}]), 400, "last message"),
        (body(messages=[{"role": "wizard", "content": "hi"}]), 400, "role"),
        (body(messages=[{"role": "user", "content": "   "}]), 400, "empty"),
        (body(messages=[{"role": "user", "content": "x" * 100_000}]), 413, "100,000"),
        (body(stream="yes"), 400, "stream"),
        (body(max_tokens=0), 400, "max_tokens"),
        (body(n=2), 400, "one choice"),
        (body(metadata={"tags": 5}), 400, "metadata.tags"),
        (body(metadata="finance"), 400, "metadata"),
    ],
)
def test_a_bad_request_is_one_clear_line(request_body, status, said):
    error = refusal(request_body)
    assert error.status == status
    assert said in str(error) and "\n" not in str(error)


def test_an_image_in_the_question_is_refused_and_earlier_ones_left_out():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    error = refusal(body(messages=[{"role": "user", "content": [image]}]))
    assert error.status == 400 and "image" in str(error) and error.code == "unsupported_content"
    earlier = {"role": "user", "content": [{"type": "text", "text": "Look"}, image]}
    call = parse(body(messages=[earlier, {"role": "user", "content": "Revenue?"}]), 512)
    assert call.history == [{"role": "user", "content": "Look"}]


def test_model_names_pick_a_scope():
    assert scope_of("docs") == ([], [])
    assert scope_of("tag:finance") == ([], ["finance"])
    assert scope_of("doc:report.pdf") == (["report.pdf"], [])
    for unknown in ("gpt-4o", "tag:", "docs2"):
        with pytest.raises(ApiError) as caught:
            scope_of(unknown)
        assert caught.value.status == 404 and caught.value.code == "model_not_found"


def test_the_gate_turns_away_what_it_cannot_hold():
    gate = Gate(2)
    gate.enter()
    with gate.held(), pytest.raises(Busy, match="busy"):
        gate.enter()
    gate.enter()  # the one held above was given back
    assert gate.inside == 2


def check(keys: Keys, path: str, authorization: str | None) -> tuple[int, dict]:
    """(status, JSON body or {}) of one request through the key check to a 200 app."""
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message):
        sent.append(message)

    headers = [(b"authorization", authorization.encode())] if authorization else []
    scope = {"type": "http", "path": path, "headers": headers, "query_string": b""}
    asyncio.run(KeyCheck(app, keys, ())(scope, None, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_keys_are_checked_when_set_and_required_beyond_loopback():
    keyed = Keys(("k1", "k2"))
    assert check(keyed, "/v1/models", "Bearer k2")[0] == 200
    assert check(keyed, "/gradio_api/mcp/", "Bearer k1")[0] == 200
    assert check(keyed, "/", None)[0] == 200  # the browser app is not theirs to guard
    status, answer = check(keyed, "/v1/models", "Bearer nope")
    assert status == 401 and answer["error"]["code"] == "invalid_api_key"
    assert check(keyed, "/v1/models", None)[0] == 401
    open_here = Keys()  # loopback, no login, no keys: open like the rest of the app
    assert check(open_here, "/v1/models", None)[0] == 200
    status, answer = check(Keys(required=True), "/v1/models", "Bearer x")
    assert status == 401 and "RAG_API_KEYS" in answer["error"]["message"]


def test_a_persons_key_acts_as_that_person_and_a_service_key_as_an_admin(tmp_path):
    people = People(tmp_path / "users.json")
    people.add("ann", "a long enough secret", groups=["finance"])
    people.add("bob", "another long secret")
    key = people.new_key("ann")
    keys = Keys(("service",), people)
    assert keys.caller({b"authorization": f"Bearer {key}".encode()}) == people.get("ann")
    assert keys.caller({b"authorization": b"Bearer service"}) == ADMIN
    assert keys.caller({b"authorization": b"Bearer rag-00000000-guess"}) is None
    assert check(Keys((), people), "/v1/models", f"Bearer {key}")[0] == 200
    assert check(Keys((), people), "/v1/models", None)[0] == 401  # users exist: keys needed
    people.remove("ann")  # her keys go with her
    assert check(Keys((), people), "/v1/models", f"Bearer {key}")[0] == 401


# -- the official client against the real app -------------------------------------------------


@pytest.fixture(scope="module")
def app_url(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("v1")
    with served_library(tiny_models, folder, RAG_MAX_QUEUE=str(QUEUE)) as url:
        yield url


@pytest.fixture
def client(app_url) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app_url}/v1", api_key=KEY, max_retries=0, timeout=120)


def ask(client: openai.OpenAI, question: str, model: str = "docs", **options):
    messages = [{"role": "user", "content": question}]
    return client.chat.completions.create(model=model, messages=messages, **options)


@pytest.mark.processes
def test_models_are_the_scopes(client):
    assert [m.id for m in client.models.list()] == ["docs", "tag:finance"]


@pytest.mark.processes
def test_an_answer_whole_and_streamed_with_its_pages(client):
    whole = ask(client, "What was the revenue?")
    text = whole.choices[0].message.content
    assert isinstance(text, str) and text and whole.choices[0].finish_reason == "stop"
    pages = whole.model_extra["pages"]
    assert len(pages) == 3 and {p["name"] for p in pages} <= {FINANCE, SLIDES}
    assert pages[0]["citation"] == f"[{pages[0]['name']} p.{pages[0]['page']}]"
    assert whole.model_extra["searched"] == "What was the revenue?"

    chunks = list(ask(client, "What was the revenue?", stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].model_extra["pages"] == pages  # the same pages, before the first word
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text  # greedy: the same


@pytest.mark.processes
def test_a_follow_up_is_searched_as_a_standalone_question(client):
    messages = [
        {"role": "user", "content": "What was the revenue in 2024?"},
        {"role": "assistant", "content": "63.8 million euros [annual_report.pdf p.1]"},
        {"role": "user", "content": "and the year before?"},
    ]
    reply = client.chat.completions.create(model="docs", messages=messages)
    # The tiny answerer rewrites it into something else (a real one into a question): the
    # history reached the engine, and the search was not the bare follow-up.
    assert reply.model_extra["searched"] != "and the year before?"
    assert reply.choices[0].message.content


@pytest.mark.processes
def test_the_scope_by_model_name_and_by_metadata(client):
    def names(reply) -> set[str]:
        return {page["name"] for page in reply.model_extra["pages"]}

    assert names(ask(client, "Revenue?", "tag:finance")) == {FINANCE}
    assert names(ask(client, "Revenue?", f"doc:{SLIDES}")) == {SLIDES}
    metadata = {"documents": SLIDES}
    assert names(ask(client, "Revenue?", metadata=metadata)) == {SLIDES}
    with pytest.raises(openai.NotFoundError, match="no document is tagged 'nope'"):
        ask(client, "Revenue?", "tag:nope")
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        ask(client, "Revenue?", "gpt-4o")
    with pytest.raises(openai.BadRequestError, match="metadata: no document"):
        ask(client, "Revenue?", metadata={"documents": "missing.pdf"})


@pytest.mark.processes
def test_a_missing_or_wrong_key_is_401(app_url):
    wrong = openai.OpenAI(base_url=f"{app_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="not valid"):
        wrong.models.list()
    with pytest.raises(openai.AuthenticationError, match="not valid"):
        ask(wrong, "Revenue?", stream=True)
    missing = httpx.get(f"{app_url}/v1/models")
    assert missing.status_code == 401 and "Bearer" in missing.json()["error"]["message"]


@pytest.mark.processes
def test_bad_requests_get_openai_errors_and_change_nothing(client, app_url):
    with pytest.raises(openai.BadRequestError, match="at least one message"):
        client.chat.completions.create(model="docs", messages=[])
    with pytest.raises(openai.BadRequestError, match="last message must be the user's"):
        client.chat.completions.create(
            model="docs", messages=[{"role": "assistant", "content": "Hello"}]
        )
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    with pytest.raises(openai.BadRequestError, match="only text is accepted"):
        client.chat.completions.create(
            model="docs", messages=[{"role": "user", "content": [image]}]
        )
    with pytest.raises(openai.APIStatusError, match="100,000 characters") as caught:
        ask(client, "x" * 100_000)
    assert caught.value.status_code == 413 and MAX_QUESTION_CHARS < 100_000

    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    url = f"{app_url}/v1/chat/completions"
    malformed = httpx.post(url, content=b'{"model": "docs", "messages": [', headers=headers)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    huge = httpx.post(url, content=b" " * (MAX_BODY_BYTES + 1), headers=headers, timeout=60)
    assert huge.status_code == 413 and "bytes" in huge.json()["error"]["message"]
    unknown = httpx.get(f"{app_url}/v1/embeddings", headers=headers)
    assert unknown.status_code == 404 and "error" in unknown.json()
    for response in (malformed, huge, unknown):
        assert "Traceback" not in response.text
    assert [m.id for m in client.models.list()] == ["docs", "tag:finance"]  # nothing changed


@pytest.mark.processes
def test_concurrent_streams_are_held_to_the_queue_limit(client):
    """1,000 clients scaled to what two shared cores hold: 16 streams at once against a line
    of 2 (RAG_MAX_QUEUE). Each gets its whole answer or a 429 at once; nothing leaks: the
    line is free again afterwards, and a stream dropped by its client gives its place back."""
    clients, start = 16, threading.Barrier(16)
    outcomes: list[str] = []

    def stream() -> None:
        start.wait()
        try:
            chunks = list(ask(client, "What was the revenue?", stream=True, max_tokens=8))
            outcomes.append("answered" if chunks[-1].choices[0].finish_reason == "stop" else "?")
        except openai.RateLimitError as error:
            assert "busy" in error.body["message"] and "Traceback" not in str(error)
            outcomes.append("busy")
        except Exception as error:  # anything else is the failure reported
            outcomes.append(repr(error))

    threads = [threading.Thread(target=stream) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(set(outcomes)) == ["answered", "busy"], outcomes
    assert outcomes.count("answered") >= 1 and len(outcomes) == clients

    for _ in range(QUEUE + 1):  # each dropped after its first chunk: none may keep its place
        with ask(client, "What was the revenue?", stream=True) as dropped:
            next(iter(dropped))
        wait_until(lambda: answered(client), "the line of requests free again", limit_s=30)


def answered(client: openai.OpenAI) -> bool:
    """Whether a question is answered now (False: the line is still full)."""
    try:
        return bool(ask(client, "What was the revenue?", max_tokens=4).choices[0].message.content)
    except openai.RateLimitError:
        return False
