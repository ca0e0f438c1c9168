"""The machine-facing surfaces added to the served app: the MCP tools (Gradio's own MCP server)
and the OpenAI-compatible /v1 routes, both behind the API keys (ui.gate) and one bounded line
of waiting requests.

Both serve the library (the shared collection): in public mode each browser session has its own
temporary collection and there is none to offer, so neither is served there.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable

import gradio as gr
from starlette.middleware import Middleware

from rag import ADMIN, Caller, Pipeline
from ui import tools, v1
from ui.gate import Gate, KeyCheck, Keys
from ui.pagefiles import PageFiles

logger = logging.getLogger(__name__)


def mcp_available() -> bool:
    """Whether Gradio's MCP extra (the ``mcp`` package) is installed."""
    return importlib.util.find_spec("mcp") is not None


def surfaces(
    demo: gr.Blocks,
    pipeline: Pipeline,
    *,
    mcp: bool,
    keys: tuple[str, ...],
    keys_required: bool,
    web_caller: Callable[[gr.Request], Caller] = lambda request: ADMIN,
    files: PageFiles | None = None,
) -> dict:
    """Add the MCP tools to ``demo`` (when ``mcp``) and return the options for its launch
        that serve them and the /v1 routes (``launch(demo, ..., **surfaces(...))``).

        ``keys``: the service keys (RAG_API_KEYS, acting as an admin); the people's own keys come
        from the users store. ``web_caller``: whom a tool called through Gradio's own API (no API
        key) acts for: the person signed in. ``files``: where get_page's images go out, checked at
    each request (``ui.pagefiles``), as the web app's do."""
    gate = Gate(pipeline.settings.max_queue)
    people = pipeline.people
    checked = Keys(keys, people, required=keys_required)
    if mcp:
        tools.render(demo, pipeline, gate, tools.Identify(checked, web_caller), files)
    if keys_required and not keys and not people:
        logger.warning(
            "/v1 and MCP refuse every request: this server listens beyond this machine or has "
            "a login, so they need API keys (app.py user key NAME, or RAG_API_KEYS)"
        )
    check = Middleware(KeyCheck, keys=checked, tools=tools.NAMES)
    app_kwargs = {"routes": v1.routes(pipeline, gate, checked), "middleware": [check]}
    return {"app_kwargs": app_kwargs, "mcp_server": mcp}
