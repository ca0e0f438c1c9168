"""The Gradio app: the conversation and the page view beside the documents panel, built from
a pipeline.

Library mode: one shared, persistent collection (optionally behind a login). Public mode: a
private temporary collection per browser session. Chats are per browser session in both. Model
work runs one request at a time in a bounded queue, so many users share one GPU safely and see
their place in line. On a phone the columns stack, the conversation first.
"""

from __future__ import annotations

import logging

import gradio as gr

from rag import Pipeline
from ui import api, chat, documents
from ui.collections import Collections
from ui.markdown import escape_markdown

logger = logging.getLogger(__name__)

INTRO = (
    "Ask questions about your documents and follow up: answers come from the most relevant **page "
    "images**, with the pages cited and heatmaps showing which parts matched your words."
)
CSS = """
#banner { border: 1px solid var(--error-border-color, #f87171); border-radius: 8px;
          padding: 4px 12px; background: var(--error-background-fill, #fef2f2); }
#legend .legend { display: flex; align-items: center; gap: 8px; font-size: 0.85em; }
#legend .legend-bar { flex: 1; height: 12px; border-radius: 6px; }
#chat a.cite { cursor: pointer; text-decoration: underline; }
#documents th, #documents th * { white-space: nowrap; word-break: keep-all; }
"""


def build_demo(pipeline: Pipeline, public: bool = False) -> gr.Blocks:
    collections = Collections(pipeline, public)
    problems = pipeline.model_problems()  # read from the models' configs: nothing loads
    for problem in problems:
        logger.warning("%s", problem)
    with gr.Blocks(title="Ask your documents", fill_width=True) as demo:
        api.render(collections)  # first, so that its endpoints own their plain names
        gr.Markdown(f"# Ask your documents\n{INTRO}")
        gr.Markdown(banner(problems), visible=bool(problems), elem_id="banner")
        with gr.Row():
            # First in the page, so on a phone the question box is on the first screen.
            with gr.Column(scale=5, min_width=340):
                chat.render(collections)
            with gr.Column(scale=2, min_width=340), gr.Accordion("Documents", elem_id="docs"):
                panel = documents.render(collections)
        demo.load(panel.list_documents, None, [panel.table, panel.choice], api_visibility="private")
        demo.unload(collections.close)
    demo.queue(max_size=pipeline.settings.max_queue, default_concurrency_limit=1)
    return demo


def banner(problems: list[str]) -> str:
    if not problems:
        return ""
    lines = "\n".join(f"- {escape_markdown(problem)}" for problem in problems)
    return f"**The app cannot answer yet: a model is missing.**\n{lines}"


def launch(demo: gr.Blocks, **options) -> None:
    """Serve ``demo`` with the page's style and the script that links citations."""
    demo.launch(css=CSS, head=chat.CITATION_LINKS, **options)


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """``"user:pass"`` or ``"alice:pw1,bob:pw2"`` -> Gradio's auth list."""
    if not value:
        return None
    pairs = []
    for item in value.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError(f"--auth expects user:password, got {item.strip()!r}")
        pairs.append((user, password))
    return pairs
