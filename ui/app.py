"""The Gradio app: the conversation, the page view and the documents panel side by side, built
from a pipeline.

Library mode: one shared, persistent collection (optionally behind a login: ``ui.login``, each
person then seeing what they may read). Public mode: a private temporary collection per
browser session. Chats are per browser session (and person) in both. Model work runs one
request at a time in a bounded queue, so many users share one GPU safely and see their place
in line. On a phone the columns stack: the conversation, the page view, the documents. Page
images go out only as checked page files (``ui.pagefiles``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
from starlette.middleware import Middleware

from rag import ADMIN, Caller, Pipeline
from ui import api, chat, documents, pages
from ui.collections import Collections
from ui.login import Login
from ui.markdown import escape_markdown
from ui.pagefiles import PageFiles, PageGuard

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
/* Behind a login, four columns in a smaller type; headers wrap between words, not cut. */
#documents.team table { font-size: var(--text-sm); }
#documents.team th, #documents.team th * { white-space: normal; word-break: normal;
                                           overflow-wrap: normal; }
/* Names wrap after their separators (ui.documents.breakable), a long run anywhere. */
#documents [role=gridcell], #documents [role=gridcell] * { word-break: normal;
                                                       overflow-wrap: anywhere; }
/* The page view: word chips, the page, its thumbnails and compact controls on one screen. */
#tokens .wrap { gap: 4px 6px; }
#tokens label { position: relative; padding: 1px 10px; border-radius: 999px;
                font-size: var(--text-sm); }
#tokens label input { position: absolute; opacity: 0; width: 1px; height: 1px; }
#tokens label.selected { background: var(--color-accent); border-color: var(--color-accent);
                         color: white; }
#tokens label span { margin-left: 0; }
/* Thumbnails: the page, then its caption under it (never over it, never cut); only the page
   shown has the accent border (hovering, or a refused click, only darkens one). */
#pages .grid-wrap { min-height: 0; overflow-y: auto; }
#pages .grid-container { grid-auto-rows: auto; }
#pages .thumbnail-item { aspect-ratio: auto; height: auto; display: flex; flex-direction: column; }
#pages .thumbnail-lg > img { height: 96px; flex: none; }
#pages .caption-label { position: static; max-width: none; border: 0; border-radius: 0;
                        white-space: pre-line; overflow-wrap: anywhere; line-height: 1.25; }
#pages .thumbnail-item:not(.selected):hover, #pages .thumbnail-item:not(.selected):focus {
  --ring-color: transparent; border-color: var(--neutral-500); }
#page-controls { align-items: center; }
@media (max-width: 640px) {
  #heatmap { height: 360px !important; }
  #pages .thumbnail-lg > img { height: 64px; }
  #pages .caption-label { font-size: 11px; }
}
"""


@dataclass
class Web:
    """The built app: its Blocks, its sessions (and the page files they hand out), and how
    people sign in."""

    demo: gr.Blocks
    collections: Collections
    login: Login | None

    def caller(self, request: gr.Request) -> Caller:
        """Whom a request through Gradio acts for (the person signed in)."""
        return self.collections.caller(request)

    def launch(self, **options) -> None:
        """Serve the app with the page's style and the script that links citations, its
        login (``ui.login``) and the guard of its page files; ``options`` go to Gradio's
        launch (``app_kwargs``' middleware is kept, the app's own added after it)."""
        login = self.login
        guard = Middleware(
            PageGuard,
            files=self.collections.files,
            identify=login.requester if login is not None else _nobody_signs_in,
        )
        app_kwargs = dict(options.pop("app_kwargs", None) or {})
        throttle = login.middleware() if login is not None else []
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), *throttle, guard]
        signing_in = login.launch_options() if login is not None else {}
        if login is not None:
            logger.info("%s", login.describe())
        self.demo.launch(
            css=CSS,
            head=chat.CITATION_LINKS,
            app_kwargs=app_kwargs,
            # No server-side rendering: its Node proxy would make every request come from
            # this machine, which the trusted-header check would then believe.
            ssr_mode=False,
            **signing_in,
            **options,
        )


def _nobody_signs_in(scope: dict) -> Caller:
    """Without a login, everyone is an admin (as before users)."""
    return ADMIN


def build_demo(
    pipeline: Pipeline,
    public: bool = False,
    login: Login | None = None,
    sync_status: Callable[[], str] | None = None,
) -> Web:
    """The app over ``pipeline``: in ``public`` mode a collection per session; ``login``: how
    people sign in (None, or a Login whose mode is off: nobody does); ``sync_status``: the
    folders' last sync, shown in the documents panel (None: no folders are synced)."""
    collections = Collections(pipeline, public, login, PageFiles())
    problems = pipeline.model_problems()  # read from the models' configs: nothing loads
    for problem in problems:
        logger.warning("%s", problem)
    with gr.Blocks(title="Ask your documents", fill_width=True) as demo:
        api.render(collections)  # first, so that its endpoints own their plain names
        gr.Markdown(f"# Ask your documents\n{INTRO}", elem_id="intro")
        gr.Markdown(banner(problems), visible=bool(problems), elem_id="banner")
        with gr.Row(elem_id="main"):
            # First in the page, so on a phone the question box is on the first screen.
            with gr.Column(scale=4, min_width=340, elem_id="conversation"):
                conversation = chat.render(collections)
            # Beside the answers: a cited page opens where it is seen.
            with gr.Column(scale=4, min_width=340, elem_id="page-view"):
                view = pages.render(collections)
            with gr.Column(scale=2, min_width=300), gr.Accordion("Documents", elem_id="docs"):
                panel = documents.render(collections, sync_status)
        chat.wire(conversation, view)
        for changed in panel.changed:  # a deleted document leaves the scope box at once
            changed.then(
                conversation.handlers.library_changed,
                conversation.scope,
                conversation.library_outputs,
                api_visibility="private",
            )
        # The documents are listed once the tab's session is known (after a reload in public
        # mode: the session it had).
        chat.wire_load(demo, conversation, view).then(
            panel.opened, None, panel.opened_outputs, api_visibility="private"
        )
        demo.unload(collections.close)
    demo.queue(max_size=pipeline.settings.max_queue, default_concurrency_limit=1)
    return Web(demo, collections, collections.login)


def banner(problems: list[str]) -> str:
    if not problems:
        return ""
    lines = "\n".join(f"- {escape_markdown(problem)}" for problem in problems)
    return f"**The app cannot answer yet: a model is missing.**\n{lines}"


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
