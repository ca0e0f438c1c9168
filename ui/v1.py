"""The OpenAI-compatible routes, on the server Gradio runs (docs/integrations.md).

    GET  /v1/models             the scopes a client may pick as its "model": docs (every
                                document), tag:NAME for each tag in use (doc:ID_OR_NAME works too)
    POST /v1/chat/completions   the last message (the user's) is the question, the earlier ones
                                the conversation (a follow-up is searched as a standalone
                                question); JSON, or SSE chunks (``"stream": true``) ending with
                                ``data: [DONE]``. Citations stay in the text ([report.pdf p.3]);
                                the pages retrieved come in the extra field ``pages`` (of the
                                completion, or of the first chunk), with ``searched``.

Scope: the model name, narrowed (or widened, with ``docs``) by ``metadata.documents`` and
``metadata.tags`` (comma-separated, as OpenAI's metadata values are strings, or lists).
Errors are OpenAI-shaped (``{"error": {"message", "type", "param", "code"}}``): 400 a bad
request, 401 a missing or wrong key (ui.gate), 404 an unknown model or route, 413 too large, 429
the line of waiting requests full, 500 an unexpected failure (logged; no traceback is sent).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.routing import BaseRoute

from rag import Answer, Pipeline, RagError, from_messages, pages_request, rewrite_request
from ui.api import describe
from ui.gate import (
    KINDS,
    MAX_BODY_BYTES,
    Busy,
    Gate,
    Keys,
    QuestionTooLong,
    check_question,
    error_body,
)

logger = logging.getLogger(__name__)

EVERYTHING = "docs"
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.param = status, code, param

    def response(self) -> JSONResponse:
        body = error_body(str(self), KINDS.get(self.status, "server_error"), self.code, self.param)
        headers = {"Retry-After": "2"} if self.status == 429 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


@dataclass(frozen=True)
class Call:
    """A chat completion request, checked."""

    model: str
    question: str
    history: list[dict]  # earlier messages, as text
    docs: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    stream: bool = False
    max_tokens: int | None = None


class Routes:
    """The /v1 handlers. Each request acts as the person its key belongs to (``ui.gate.Keys``):
    the documents it lists, searches and answers from are exactly theirs to read."""

    def __init__(self, pipeline: Pipeline, gate: Gate, keys: Keys) -> None:
        self.pipeline = pipeline
        self.gate = gate
        self.keys = keys
        self.started = int(time.time())

    def acting(self, request: Request) -> Pipeline:
        """The collection as the request's person sees it."""
        headers = dict(request.scope.get("headers") or [])
        return self.pipeline.acting_for(self.keys.acting(headers))

    # -- GET /v1/models ---------------------------------------------------------------------

    async def models(self, request: Request) -> JSONResponse:
        try:
            documents = await anyio.to_thread.run_sync(self.acting(request).documents)
        except RagError as error:
            return ApiError(500, str(error)).response()
        tags = sorted({tag for d in documents for tag in d.tags})
        names = [EVERYTHING, *(f"tag:{tag}" for tag in tags)]
        data = [
            {"id": n, "object": "model", "created": self.started, "owned_by": "rag"} for n in names
        ]
        return JSONResponse({"object": "list", "data": data})

    # -- POST /v1/chat/completions ----------------------------------------------------------

    async def chat(self, request: Request):
        try:
            pipeline = self.acting(request)
            body = await read_body(request)
            given = given_pages(body)  # another copy of this app, using it as its model server
            limit = pipeline.settings.max_new_tokens
            call = parse(body, limit) if given is None else parse_head(body, limit)
            await anyio.to_thread.run_sync(check_scope, pipeline, call)
            try:
                self.gate.enter()
            except Busy as error:
                raise ApiError(429, str(error), "queue_full") from None
            try:
                if given is None:
                    answer = await anyio.to_thread.run_sync(retrieve, pipeline, call)
                    found = await anyio.to_thread.run_sync(describe, answer)
                    pieces = answer.stream(call.max_tokens)
                elif isinstance(given, tuple):  # a follow-up to rewrite, as its answerer would
                    found = {"hits": [], "searched": given[0]}
                    rewritten = await anyio.to_thread.run_sync(pipeline.standalone, *given)
                    pieces = (piece for piece in [rewritten])  # closable, as a stream is
                else:
                    found = {"hits": [], "searched": given.question}
                    pieces = pipeline.answer_pages(given, call.max_tokens)
                if call.stream:
                    chunks = self.chunks(call, pieces, found)
                    return Streamed(chunks, on_close=self.gate.leave)
                text = await anyio.to_thread.run_sync(joined, pieces)
            except BaseException:
                self.gate.leave()
                raise
            self.gate.leave()
            return JSONResponse(completion(call, found, text))
        except ApiError as error:
            return error.response()
        except Exception:
            logger.exception("/v1/chat/completions failed")
            return ApiError(500, "the server failed to answer (see its log)").response()

    async def chunks(self, call: Call, pieces: Iterator[str], found: dict) -> AsyncIterator[str]:
        ident, created = completion_id(), int(time.time())

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            body = {"id": ident, "object": "chat.completion.chunk", "created": created}
            body |= {"model": call.model, "choices": [choice], **extra}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        yield chunk(
            {"role": "assistant", "content": ""}, pages=found["hits"], searched=found["searched"]
        )
        try:
            while (piece := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
                if piece:
                    yield chunk({"content": piece})
        except RagError as error:
            yield f"data: {json.dumps(error_body(str(error), 'server_error'))}\n\n"
            return
        except Exception:
            logger.exception("/v1/chat/completions failed while streaming")
            failed = error_body("the server failed while answering (see its log)", "server_error")
            yield f"data: {json.dumps(failed)}\n\n"
            return
        finally:
            with anyio.CancelScope(shield=True):  # a client that went away stops the model
                await anyio.to_thread.run_sync(pieces.close)
        yield chunk({}, "stop")
        yield "data: [DONE]\n\n"

    async def unknown(self, request: Request) -> JSONResponse:
        path = request.url.path
        return ApiError(
            404, f"{request.method} {path}: no such route here", "unknown_url"
        ).response()


def check_scope(pipeline: Pipeline, call: Call) -> None:
    """An unknown document or tag, named by the model (404) or in metadata (400): unknown to
    the request's person, who cannot tell another's document from none."""
    from_model = scope_of(call.model)
    try:
        pipeline.scope(*from_model)
    except RagError as error:
        raise ApiError(404, f"model {call.model!r}: {error}", "model_not_found", "model") from None
    try:
        pipeline.scope(call.docs, call.tags)
    except RagError as error:
        raise ApiError(400, f"metadata: {error}", None, "metadata") from None


def retrieve(pipeline: Pipeline, call: Call) -> Answer:
    docs, tags = scope_of(call.model)
    history = from_messages(call.history)
    try:
        return pipeline.ask(
            call.question, None, [*docs, *call.docs], [*tags, *call.tags], history=history
        )
    except RagError as error:
        raise ApiError(400, str(error)) from None


class Streamed(StreamingResponse):
    """SSE whose ``on_close`` runs however the response ends (finished, failed, the client
    gone, or never started)."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.on_close = on_close
        self.closed = False

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.on_close()

    def __del__(self) -> None:  # a response dropped before it was sent
        self.close()


async def read_body(request: Request) -> object:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, too_big(int(declared)), "request_too_large")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, too_big(len(body)), "request_too_large")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the body is not valid JSON: {error}", "invalid_json") from None


def too_big(size: int) -> str:
    return f"the request body is {size:,} bytes; at most {MAX_BODY_BYTES:,} are accepted"


def given_pages(body: object):
    """What this app's remote answerer (``rag.models.remote``) asks when it uses this app as
    its model server: the question, pages (as images) and history to answer from, or the
    (question, history) of a follow-up to rewrite; None for any other request."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    content = messages[-1].get("content")
    if len(messages) == 1 and isinstance(content, str) and rewrite_request(content):
        return rewrite_request(content)
    return pages_request(messages)


def joined(pieces: Iterator[str]) -> str:
    with closing(pieces):
        return "".join(pieces)


def parse(body: object, max_new_tokens: int) -> Call:
    """A chat completion request -> Call; ApiError (400, 413) naming what is wrong."""
    head = parse_head(body, max_new_tokens)
    question, history = parse_messages(body.get("messages"))
    docs, tags = parse_metadata(body.get("metadata"))
    return replace(head, question=question, history=history, docs=docs, tags=tags)


def parse_head(body: object, max_new_tokens: int) -> Call:
    """A request's model, stream and token limit (its messages read elsewhere)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ApiError(400, "model: a model name is required (GET /v1/models)", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "stream: must be true or false", param="stream")
    if body.get("n", 1) != 1:
        raise ApiError(400, "n: only one choice is written", param="n")
    tokens = parse_tokens(body, max_new_tokens)
    return Call(model.strip(), "", [], stream=stream, max_tokens=tokens)


def parse_messages(messages: object) -> tuple[str, list[dict]]:
    """The question (the last message, the user's) and the earlier messages as text."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages: at least one message is required", param="messages")
    texts = []
    for number, message in enumerate(messages):
        where = f"messages[{number}]"
        if not isinstance(message, dict):
            raise ApiError(
                400, f"{where}: a message is an object with role and content", param=where
            )
        role = message.get("role")
        if role not in ROLES:
            raise ApiError(
                400, f"{where}: role {role!r} is not one of {', '.join(ROLES)}", param=where
            )
        last = number == len(messages) - 1
        texts.append({"role": role, "content": content_text(message.get("content"), where, last)})
    if texts[-1]["role"] != "user":
        role = texts[-1]["role"]
        raise ApiError(
            400,
            f"the last message must be the user's question (role 'user'); it is {role!r}",
            param="messages",
        )
    try:
        question = check_question(texts[-1]["content"])
    except QuestionTooLong as error:
        raise ApiError(413, str(error), "question_too_long", "messages") from None
    except ValueError as error:
        raise ApiError(400, str(error), param="messages") from None
    return question, [m for m in texts[:-1] if m["role"] in ("user", "assistant")]


def content_text(content: object, where: str, last: bool) -> str:
    """A message's text: a string, or its text parts joined. The question may hold only text:
    an image (or audio, or a file) in it is refused, since this searches the documents by
    words; in earlier messages such parts are left out."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise ApiError(400, f"{where}: content must be a string or a list of parts", param=where)
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif last:
            what = "an image" if kind in ("image_url", "input_image", "image") else repr(kind)
            raise ApiError(
                400,
                f"{where}: the question holds {what}; only text is accepted (the documents are "
                "searched by the question's words)",
                "unsupported_content",
                where,
            )
    return "\n".join(texts)


def parse_metadata(metadata: object) -> tuple[list[str], list[str]]:
    """``metadata.documents`` and ``metadata.tags``: comma-separated strings or lists."""
    if metadata is None:
        return [], []
    if not isinstance(metadata, dict):
        raise ApiError(400, "metadata: must be an object", param="metadata")
    found = []
    for name in ("documents", "tags"):
        value = metadata.get(name) or []
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError(400, f"metadata.{name}: a comma-separated string or a list of strings")
        found.append([v.strip() for v in value if v.strip()])
    return found[0], found[1]


def parse_tokens(body: dict, limit: int) -> int | None:
    """``max_completion_tokens`` (or the older ``max_tokens``), at most the server's own."""
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, f"max_tokens: a positive integer, got {value!r}", param="max_tokens")
    return min(value, limit)


def scope_of(model: str) -> tuple[list[str], list[str]]:
    """The scope a model name picks: (documents, tags); 404 for a name that is none."""
    kind, sep, name = model.partition(":")
    if model == EVERYTHING:
        return [], []
    if sep and name.strip() and kind in ("tag", "doc"):
        return ([name.strip()], []) if kind == "doc" else ([], [name.strip()])
    raise ApiError(
        404,
        f"the model {model!r} does not exist: use {EVERYTHING!r}, 'tag:NAME' or 'doc:ID_OR_NAME' "
        "(GET /v1/models lists them)",
        "model_not_found",
        "model",
    )


def completion(call: Call, found: dict, text: str) -> dict:
    message = {"role": "assistant", "content": text}
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "pages": found["hits"],
        "searched": found["searched"],
    }


def completion_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


def routes(pipeline: Pipeline, gate: Gate, keys: Keys) -> list[BaseRoute]:
    """The /v1 routes, to put first on the server's app (``app_kwargs={"routes": ...}``)."""
    handlers = Routes(pipeline, gate, keys)
    router = APIRouter()
    router.add_api_route("/v1/models", handlers.models, methods=["GET"])
    router.add_api_route("/v1/chat/completions", handlers.chat, methods=["POST"])
    any_method = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    router.add_api_route("/v1/{rest:path}", handlers.unknown, methods=any_method)
    return router.routes
