"""A web server on this machine that notes every path asked of it: how the tests prove that a
document (an HTML page, a mail, an office file's remote template) made nobody fetch anything."""

from __future__ import annotations

import contextlib
import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

BARRIER = "/barrier"


@contextlib.contextmanager
def recording_server() -> Iterator[tuple[str, Callable[[], list[str]]]]:
    """Yields (its URL, ``asked()``: the paths asked of it so far, answered 404).

    The server answers one connection at a time, in the order they arrived, so ``asked()``
    sends a request of its own and waits for the answer: every request sent before the call
    (by a process that has ended since) has been recorded by then, however slow it was.
    """
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 10  # a connection that never sends its request does not stall the rest

        def do_GET(self):
            seen.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)  # one connection at a time
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy

    def asked() -> list[str]:
        with contextlib.suppress(urllib.error.HTTPError):  # the 404 of the barrier itself
            direct.open(url + BARRIER, timeout=30)
        return [path for path in seen if path != BARRIER]

    try:
        yield url, asked
    finally:
        server.shutdown()
        server.server_close()
