"""A served library for the /v1 and MCP tests: two sample documents indexed by the CLI (one
tagged ``finance``) before the real app starts on 127.0.0.1 with an API key."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import ROOT, SAMPLES
from tests.helpers.servers import app_env, running_server

KEY = "test-key-1"
FINANCE = "annual_report.pdf"  # 3 pages, tagged finance
SLIDES = "product_slides.pdf"


@contextmanager
def served_library(tiny_models, folder: Path, **env: str):
    """Yield the base URL of a library app holding FINANCE (tag ``finance``) and SLIDES,
    with ``RAG_API_KEYS=KEY`` and the extra ``env``."""
    settings = {**app_env(tiny_models, folder / "data"), "RAG_API_KEYS": KEY, **env}
    for name, tags in ((FINANCE, ["--tag", "finance"]), (SLIDES, [])):
        subprocess.run(
            [sys.executable, "app.py", "index", str(SAMPLES / name), *tags],
            cwd=ROOT,
            env={**os.environ, **settings},
            check=True,
            capture_output=True,
        )
    with running_server(settings, log=folder / "server.log") as (url, _server):
        yield url
