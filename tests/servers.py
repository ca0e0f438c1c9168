"""Start the real app (``python app.py serve``) on 127.0.0.1 for UI tests, and stop it."""

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

from tests.conftest import ROOT


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
