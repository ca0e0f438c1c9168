"""Time to the first token of an answer on a model server, the app's side alone.

    python -m benchmarks.remote [--top-k 3] [--repeats 5] [--server URL --model NAME] [--out FILE]

The pages are the sample PDFs' first pages, rendered at the app's 144 DPI and sized as the
``cpu`` profile with ``RAG_GENERATOR=openai:MODEL`` sizes them (the default answer budget).
Against a server on this machine that streams its first token at once, the time from the
request to that token is the network's and the app's cost alone: the pages encoded as PNG and
base64, the request sent (its size is reported), the server reading it, the first event back.
A follow-up over the same pages reuses their encoding. With ``--server`` (a real model server
on this machine, e.g. vLLM), the same request measures the model's own time on top.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from benchmarks.report import header, machine, parser, run_and_publish, table
from rag.config import Settings
from rag.models.families.base import PageImage
from rag.models.remote import RemoteAnswerer

RESULTS = "results-remote.md"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
QUESTION = "What was the revenue in 2023, and how did it change from 2022?"


@dataclass
class Row:
    what: str
    median_ms: float
    low_ms: float


@dataclass
class Result:
    command: str
    machine: str
    pages: str
    request_mb: float
    rows: list[Row]
    reference_ms: float = 0.0  # the same server's round trip for a request of a few bytes


def sample_pages(n: int) -> list[PageImage]:
    """The first page of each sample PDF (then second pages), rendered by poppler at 144 DPI."""
    pdfs = sorted(SAMPLES.glob("*.pdf"))
    pages = []
    with tempfile.TemporaryDirectory() as folder:
        for number in range(1, 3):
            for pdf in pdfs:
                if len(pages) == n:
                    return pages
                stem = Path(folder) / f"{pdf.stem}-{number}"
                command = ["pdftoppm", "-png", "-r", "144", "-singlefile"]
                command += ["-f", str(number), "-l", str(number), str(pdf), str(stem)]
                if subprocess.run(command, capture_output=True, check=False).returncode:
                    continue
                with Image.open(f"{stem}.png") as image:
                    pages.append(PageImage(f"[{pdf.name} p.{number}]", image.convert("RGB")))
    return pages


class Instant(BaseHTTPRequestHandler):
    """A chat server with no model: it reads the request whole and streams one token at once."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        json.loads(self.rfile.read(int(self.headers["Content-Length"])))  # as a server must
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        delta = {"choices": [{"index": 0, "delta": {"content": "The"}}]}
        self.wfile.write(f"data: {json.dumps(delta)}\n\ndata: [DONE]\n\n".encode())
        self.close_connection = True


def round_trip_s(url: str) -> float:
    """The reference, measured in the same run: a few-byte chat request to the same server,
    its first event back (the machine's own cost of a request, without pages)."""
    import httpx

    body = {"model": "instant", "messages": [{"role": "user", "content": "?"}], "stream": True}
    start = time.perf_counter()
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=30) as response:
        next(response.iter_lines())
    return time.perf_counter() - start


def first_token_s(answerer: RemoteAnswerer, pages: list[PageImage]) -> float:
    start = time.perf_counter()
    stream = answerer.stream(QUESTION, pages, 1)
    next(stream)
    elapsed = time.perf_counter() - start
    stream.close()
    return elapsed


def measured(what: str, runs: list[float]) -> Row:
    return Row(what, 1000 * statistics.median(runs), 1000 * min(runs))


def run(args) -> Result:
    pages = sample_pages(args.top_k)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Instant)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    settings = Settings.from_env(
        {"RAG_PROFILE": "cpu"}, generator="openai:instant", generator_url=local
    )

    def fresh(url: str = local, model: str = "instant") -> RemoteAnswerer:
        return RemoteAnswerer(
            Settings(**{**vars(settings), "generator": f"openai:{model}", "generator_url": url})
        )

    encode = [_timed(lambda: fresh().messages(QUESTION, pages)) for _ in range(args.repeats)]
    warm = fresh()
    warm.messages(QUESTION, pages)
    cached = [_timed(lambda: warm.messages(QUESTION, pages)) for _ in range(args.repeats)]
    cold = [first_token_s(fresh(), pages) for _ in range(args.repeats)]
    follow = [first_token_s(warm, pages) for _ in range(args.repeats)]
    reference = [round_trip_s(local) for _ in range(args.repeats)]
    body = json.dumps({"messages": warm.messages(QUESTION, pages)})
    rows = [
        measured(f"pages encoded (PNG, base64), {len(pages)} pages", encode),
        measured("pages encoded, follow-up (kept)", cached),
        measured("**first token, local server answering at once**", cold),
        measured("**first token, follow-up over the same pages**", follow),
    ]
    if args.server:
        served = fresh(args.server, args.model)
        first_token_s(served, pages)  # its own warm-up
        model = [first_token_s(fresh(args.server, args.model), pages) for _ in range(args.repeats)]
        rows.append(measured(f"first token, {args.model} at {args.server}", model))
    httpd.shutdown()
    sizes = ", ".join(f"{p.image.width}x{p.image.height}" for p in pages)
    command = f"python -m benchmarks.remote --top-k {args.top_k} --repeats {args.repeats}"
    reference_ms = 1000 * statistics.median(reference)
    return Result(command, machine(), sizes, len(body) / 2**20, rows, reference_ms)


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def report(result: Result) -> str:
    lines = header(
        "Answers on a model server: the app's side of the first token",
        f"command: `{result.command}`",
        f"machine: {result.machine}",
        f"pages as rendered (144 DPI): {result.pages}; the request: {result.request_mb:.2f} MB",
    )
    base = result.reference_ms or float("nan")
    cells = [
        (r.what, f"{r.median_ms:.1f} ms", f"{r.low_ms:.1f} ms", f"{r.median_ms / base:.1f}x")
        for r in result.rows
    ]
    columns = ["stage", "median", "fastest", "x the bare round trip"]
    reference = f"reference, same run: a few-byte request's round trip, {base:.1f} ms (median)"
    return "\n".join([*lines, reference, "", *table(cells, columns, "lrrr"), ""])


def parse_args(argv):
    arguments = parser("remote", __doc__, RESULTS)
    arguments.add_argument("--top-k", type=int, default=3)
    arguments.add_argument("--repeats", type=int, default=5)
    arguments.add_argument("--server", help="a model server's /v1 on this machine")
    arguments.add_argument("--model", default="", help="the model it serves")
    return arguments.parse_args(argv)


def main(argv: list[str] | None = None) -> Result:
    return run_and_publish(argv, parse_args, run, report, RESULTS)


if __name__ == "__main__":
    main()
