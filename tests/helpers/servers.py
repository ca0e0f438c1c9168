"""Start the real app (``python app.py serve``) on 127.0.0.1 for UI tests, and stop it; the
settings it runs with, and the gradio_client calls several tests make."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from gradio_client import Client

from tests.helpers import ROOT


def app_env(tiny_models, data_dir: Path) -> dict[str, str]:
    """The app's environment for tests: the tiny ColQwen2 and Qwen2-VL, low DPI, small pages
    for the answerer, short answers, and at most 2 documents a public session."""
    return {
        "RAG_RETRIEVER": str(tiny_models / "colqwen2"),
        "RAG_GENERATOR": str(tiny_models / "qwen2_vl"),
        "RAG_DATA_DIR": str(data_dir),
        "RAG_DPI": "48",
        "RAG_MAX_NEW_TOKENS": "16",
        "RAG_ANSWER_MIN_PIXELS": str(28 * 28 * 4),
        "RAG_ANSWER_MAX_PIXELS": str(28 * 28 * 64),
        "RAG_PUBLIC_MAX_DOCUMENTS": "2",
    }


def listed(client: Client) -> dict[str, dict]:
    """The documents /list returns, by name."""
    return {d["name"]: d for d in client.predict(api_name="/list")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_app(env: dict[str, str], *args: str, log: Path):
    """Yield the base URL of a served app; the server is killed on exit."""
    with running_server(env, *args, log=log) as (url, _server):
        yield url


@contextmanager
def running_server(env: dict[str, str], *args: str, log: Path):
    """Yield (base URL, server process) of a served app; the server is killed on exit."""
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "app.py", "serve", "--port", str(port), *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server, log)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_until_up(url: str, server: subprocess.Popen, log: Path, limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/gradio_api/info", timeout=2):
                return
        except urllib.error.HTTPError:  # it answers (behind a login, say): it is up
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the app did not start within {limit_s} s:\n{log.read_text()}")
