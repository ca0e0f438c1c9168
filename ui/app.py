"""The Gradio app: the documents panel beside the question panel, built from a pipeline.

Library mode: one shared, persistent collection (optionally behind a login). Public mode: a
private temporary collection per browser session. Model work runs one request at a time in a
bounded queue, so many users share one GPU safely and see their place in line.
"""

from __future__ import annotations

import gradio as gr

from rag.pipeline import Pipeline
from ui import ask, documents
from ui.collections import Collections

INTRO = (
    "Upload PDFs, ask a question, and get an answer from the most relevant **page images**, "
    "with the pages cited and heatmaps showing which parts of each page matched your words."
)


def build_demo(pipeline: Pipeline, public: bool = False) -> gr.Blocks:
    collections = Collections(pipeline, public)
    with gr.Blocks(title="Ask your PDFs", fill_width=True) as demo:
        gr.Markdown(f"# Ask your PDFs\n{INTRO}")
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                panel = documents.render(collections)
            with gr.Column(scale=5):
                ask.render(collections)
        demo.load(panel.list_documents, None, [panel.table, panel.choice], api_name="list")
        demo.unload(collections.close)
    demo.queue(max_size=pipeline.settings.max_queue, default_concurrency_limit=1)
    return demo


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
