"""A real HTTP server on 127.0.0.1, in a thread, that answers the OpenAI chat API the way a test
scripts it (a completion, a stream, a 429, a 401, silence, a stream it can tell was closed), and
keeps every request it got: for the remote answerer's request shapes and its error paths."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """One scripted answer: a status and a JSON body, or (``chunks``) a server-sent event
    stream of those texts, ``pause_s`` apart; ``hang_s``: wait that long before answering."""

    status: int = 200
    body: object = None
    chunks: list[str] | None = None
    pause_s: float = 0.0
    hang_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw: list[str] | None = None  # SSE lines sent as they are (after the chunks)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None


def completion(text: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "tiny",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }


def chunk(text: str | None, role: bool = False) -> str:
    delta = {"role": "assistant"} if role else {}
    if text is not None:
        delta["content"] = text
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    return "data: " + json.dumps(body)


def error(message: str, code: str | int | None = None, kind: str = "invalid_request_error"):
    return {"error": {"message": message, "type": kind, "code": code}}


class ChatServer:
    """``replies`` are given out in order for POSTs (the last one again once they run out);
    ``models`` is what ``GET /models`` lists (None: 404). ``seen``: every request."""

    def __init__(self, replies: list[Reply], models: list[str] | None = None) -> None:
        self.replies = list(replies)
        self.models = models
        self.seen: list[Seen] = []
        self.disconnected = threading.Event()  # a client went away in the middle of a stream
        self._lock = threading.Lock()

    def next_reply(self) -> Reply:
        with self._lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.seen.append(Seen("GET", self.path, dict(self.headers), None))
                if server.models is None:
                    self._json(404, error("no such route", 404))
                else:
                    data = [{"id": name, "object": "model"} for name in server.models]
                    self._json(200, {"object": "list", "data": data})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                server.seen.append(Seen("POST", self.path, dict(self.headers), body))
                reply = server.next_reply()
                time.sleep(reply.hang_s)
                if reply.chunks is None and reply.raw is None:
                    self._json(reply.status, reply.body, reply.headers)
                else:
                    self._stream(reply)

            def _json(self, status: int, body: object, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                lines = [chunk(None, role=True), *map(chunk, reply.chunks or [])]
                lines += reply.raw if reply.raw is not None else ["data: [DONE]"]
                try:
                    for line in lines:
                        self.wfile.write(f"{line}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(reply.pause_s)
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnected.set()
                self.close_connection = True

        return Handler


@contextmanager
def serving(
    replies: list[Reply], models: list[str] | None = None
) -> Iterator[tuple[str, ChatServer]]:
    """Yield (its /v1 base URL, the server) while it runs in a thread."""
    chat = ChatServer(replies, models)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), chat.handler())
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", chat
    finally:
        httpd.shutdown()
        httpd.server_close()


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.monotonic()
    try:
        result = call()
    except Exception as caught:  # the tests check the error, and how soon it came
        result = caught
    return time.monotonic() - start, result
