"""The machine-facing surfaces added to the served app: the MCP tools (Gradio's own MCP server)
and the OpenAI-compatible /v1 routes, both behind the API keys (ui.gate) and one bounded line
of waiting requests.

Both serve the library (the shared collection): in public mode each browser session has its own
temporary collection and there is none to offer, so neither is served there.
"""

from __future__ import annotations

import importlib.util
import logging

import gradio as gr
from starlette.middleware import Middleware

from rag import Pipeline
from ui import tools, v1
from ui.gate import Gate, KeyCheck

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
) -> dict:
    """Add the MCP tools to ``demo`` (when ``mcp``) and return the options for its launch
    that serve them and the /v1 routes (``launch(demo, ..., **surfaces(...))``)."""
    gate = Gate(pipeline.settings.max_queue)
    if mcp:
        tools.render(demo, pipeline, gate)
    if keys_required and not keys:
        logger.warning(
            "/v1 and MCP refuse every request: this server listens beyond this machine or has "
            "a login, so they need API keys (set RAG_API_KEYS)"
        )
    check = Middleware(KeyCheck, keys=keys, required=keys_required, tools=tools.NAMES)
    app_kwargs = {"routes": v1.routes(pipeline, gate), "middleware": [check]}
    return {"app_kwargs": app_kwargs, "mcp_server": mcp}
