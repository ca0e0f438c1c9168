"""The conversation: ask, follow up, stop, start over; each turn with its own pages.

A turn shows the question, a note of what was searched (the follow-up rewritten to stand
alone, and within which documents), then the answer as it streams. Citations in the answers
are links (made in the browser by ``CITATION_LINKS``) that open that turn's page in the page
view. Problems a user can fix (an empty question, no documents yet, a deleted document) are
toasts that leave the page as it was, never error badges.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import gradio as gr

from rag import CITATION_PATTERN, RagError
from ui import pages
from ui.collections import ChatTurn, Collections, Session
from ui.gpu import gpu
from ui.markdown import escape_markdown

DOC, TAG = "doc:", "tag:"  # scope values: "doc:ID" (or a bare id or name) and "tag:T"
STOPPED = " *(stopped)*"
EXAMPLES = [
    "What was the revenue in 2024?",
    "Which product line grew fastest?",
    "Who approved the travel expense claim?",
    "When is general availability of Project Falcon planned?",
    "Какая рабочая температура датчика?",
]

# The browser script that turns citations in the answers into links (ui/citations.js), with
# the engine's citation pattern put in: the format is written once, in rag.citations.
CITATION_LINKS = (
    "<script>\nconst CITATION_PATTERN = "
    + json.dumps(CITATION_PATTERN)
    + ";\n"
    + (Path(__file__).parent / "citations.js").read_text()
    + "</script>\n"
)


class Handlers:
    """The conversation's event handlers; each finds the caller's session from the request."""

    def __init__(self, collections: Collections) -> None:
        self.collections = collections

    @gpu
    def ask(  # noqa: PLR0917 (Gradio passes an event's inputs positionally)
        self,
        question: str,
        scope: list[str] | None,
        top_k: float,
        max_new_tokens: float,
        rewrite: bool,
        word: str | None,
        overlay: bool,
        opacity: float,
        boxes: bool,
        request: gr.Request,
    ):
        """Outputs: chat, question box, then the page view's outputs."""
        look = (word, overlay, opacity, boxes)
        session = self.collections.session(request)
        keep = pages.UNCHANGED
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question first.")
            yield gr.skip(), gr.skip(), *keep
            return
        pending = {"role": "assistant", "content": "", "metadata": {"title": "Searching…"}}
        pending["metadata"]["status"] = "pending"
        asked = {"role": "user", "content": question}
        yield [*messages(session.turns), asked, pending], "", *keep
        try:
            turn = self._retrieve(session, question, scope or [], int(top_k), rewrite)
        except RagError as error:  # nothing to search, an unknown document, a missing model
            gr.Warning(str(error))
            yield messages(session.turns), question, *keep
            return
        index = len(session.turns) - 1
        view = pages.show(session, index, 0, look) if turn.answer.hits else keep
        yield messages(session.turns), gr.skip(), *view
        try:
            with closing(turn.answer.stream(int(max_new_tokens))) as pieces:
                for piece in pieces:
                    if turn.stopped:  # stop was pressed: not one more piece, even in flight
                        break
                    turn.text += piece
                    yield messages(session.turns), gr.skip(), *keep
        except RagError as error:  # a retrieved document was deleted before the answer began
            gr.Warning(str(error))
            turn.stopped = True
        # The thumbnails' "cited" marks are known now (and the title's, for the page shown).
        view = keep
        if turn.answer.hits and session.view[0] == index:
            view = pages.show(session, index, session.view[1], look)
        yield messages(session.turns), gr.skip(), *view

    def _retrieve(
        self, session: Session, question: str, scope: list[str], top_k: int, rewrite: bool
    ) -> ChatTurn:
        docs, tags = split_scope(scope)
        answer = session.pipeline.ask(
            question, top_k, docs=docs, tags=tags, history=session.history(), rewrite=rewrite
        )
        turn = ChatTurn(answer, scope_label(session, docs, tags))
        session.turns.append(turn)
        return turn

    def stop(self, request: gr.Request):
        """The stop button: the answer being written ends where it is (the event that streams
        it is cancelled, which closes its generator and frees the model)."""
        session = self.collections.session(request)
        if session.turns and not session.turns[-1].stopped:
            session.turns[-1].stopped = True
        return messages(session.turns)

    def new_chat(self, request: gr.Request):
        session = self.collections.session(request)
        session.turns.clear()
        session.view = (0, 0)
        empty = gr.update(value=[], selected_index=None)
        words = gr.update(choices=[pages.WHOLE_QUERY], value=pages.WHOLE_QUERY)
        return [], "", pages.EMPTY_TITLE, None, words, empty, "", None

    def scope_choices(self, chosen: list[str] | None, request: gr.Request):
        """What can be searched within, read afresh whenever the selector is opened: each
        document, then each tag."""
        documents = self.collections.session(request).pipeline.documents()
        choices = [(f"{d.name} ({d.pages} p.)", f"{DOC}{d.doc_id}") for d in documents]
        tags = sorted({tag for d in documents for tag in d.tags})
        choices += [(f"tag: {tag}", f"{TAG}{tag}") for tag in tags]
        known = {value for _, value in choices}
        return gr.update(choices=choices, value=[v for v in chosen or [] if v in known])

    # -- the page view ----------------------------------------------------------------------

    @gpu
    def open_citation(  # noqa: PLR0917 (Gradio passes an event's inputs positionally)
        self, target: str, word, overlay, opacity, boxes, request: gr.Request
    ):
        """A citation link was clicked: ``target`` is "turn|[name p.N]|nonce"."""
        session = self.collections.session(request)
        turn, _, rest = (target or "").partition("|")
        label = rest.rpartition("|")[0]
        if not turn.isdigit() or int(turn) >= len(session.turns):
            return pages.UNCHANGED
        hits = session.turns[int(turn)].answer.hits
        index = next((i for i, h in enumerate(hits) if h.citation == label), None)
        if index is None:  # a citation the answerer made up: not one of the turn's pages
            gr.Warning(f"{label} is not one of the pages retrieved for that question.")
            return pages.UNCHANGED
        return pages.show(session, int(turn), index, (word, overlay, opacity, boxes))

    @gpu
    def select_page(  # noqa: PLR0917 (Gradio passes an event's inputs positionally)
        self, word, overlay, opacity, boxes, event: gr.SelectData, request: gr.Request
    ):
        session = self.collections.session(request)
        turn, _ = session.view
        if turn >= len(session.turns):
            return pages.UNCHANGED
        look = (word, overlay, opacity, boxes)
        return pages.show(session, turn, event.index, look, gallery=False)

    def previous_page(self, word, overlay, opacity, boxes, request: gr.Request):
        return self._step(-1, (word, overlay, opacity, boxes), request)

    def next_page(self, word, overlay, opacity, boxes, request: gr.Request):
        return self._step(1, (word, overlay, opacity, boxes), request)

    @gpu
    def _step(self, delta: int, look: pages.Look, request: gr.Request):
        """The turn's previous or next retrieved page (round the end)."""
        session = self.collections.session(request)
        turn, hit = session.view
        if turn >= len(session.turns):
            return pages.UNCHANGED
        count = len(session.turns[turn].answer.hits)
        return pages.show(session, turn, (hit + delta) % count, look)

    @gpu
    def redraw(self, word, overlay, opacity, boxes, request: gr.Request):
        """The word, the heatmap switch, its opacity or the word frames changed: the same page,
        drawn again."""
        session = self.collections.session(request)
        turn, hit = session.view
        if turn >= len(session.turns):
            return pages.UNCHANGED
        look = (word, overlay, opacity, boxes)
        return pages.show(session, turn, hit, look, gallery=False)


def messages(turns: list[ChatTurn]) -> list[dict]:
    """The chat as Gradio's Chatbot shows it: per turn, the question, a folded note of what was
    searched where and which pages were found, and the answer."""
    shown: list[dict] = []
    for turn in turns:
        answer = turn.answer
        searched = f"searched for: {answer.searched}" if answer.rewritten else "searched"
        found = ", ".join(hit.citation for hit in answer.hits) or "no pages"
        note = f"Within {escape_markdown(turn.scope)}: {escape_markdown(found)}"
        title = f"{searched} · within {turn.scope}"
        shown.append({"role": "user", "content": answer.question})
        shown.append(
            {"role": "assistant", "content": note, "metadata": {"title": title, "status": "done"}}
        )
        text = turn.text + (STOPPED if turn.stopped else "")
        if text:
            shown.append({"role": "assistant", "content": text})
    return shown


def scope_label(session: Session, docs: list[str], tags: list[str]) -> str:
    """Where a turn searched, as the user reads it."""
    if not docs and not tags:
        return "all documents"
    names = [session.pipeline.find(ref).name for ref in docs]
    return ", ".join([*names, *(f"tag: {tag}" for tag in tags)])


def split_scope(values: list[str]) -> tuple[list[str], list[str]]:
    """Scope values as (documents, tags): ``tag:T`` is a tag, ``doc:X`` or a bare X a document
    id or exact name.

    >>> split_scope(["doc:3f2a", "tag:finance", "report.pdf"])
    (['3f2a', 'report.pdf'], ['finance'])
    """
    docs = [v.removeprefix(DOC) for v in values if not v.startswith(TAG)]
    return docs, [v.removeprefix(TAG) for v in values if v.startswith(TAG)]


def render(collections: Collections) -> None:
    settings = collections.pipeline.settings
    handlers = Handlers(collections)

    # -- layout -----------------------------------------------------------------------------
    chat = gr.Chatbot(
        label="Conversation",
        elem_id="chat",
        height=460,
        buttons=["copy", "copy_all"],
        feedback_options=None,
        group_consecutive_messages=False,  # one copy button per answer, for the answer alone
        placeholder="Add documents in the Documents panel (beside this; below it on a phone), then "
        "ask about them. Follow-up questions are understood in context.",
    )
    with gr.Row(equal_height=True):
        question = gr.Textbox(
            show_label=False,
            placeholder="Ask about your documents…",
            elem_id="q",
            scale=6,
            lines=1,
            max_lines=6,
            submit_btn=False,
        )
        submit = gr.Button("Ask", variant="primary", scale=1, min_width=60, elem_id="ask")
        stop = gr.Button("Stop", variant="stop", scale=1, min_width=60, elem_id="stop")
    with gr.Row(equal_height=True):
        scope = gr.Dropdown(
            label="Search within (documents and tags; empty: everything)",
            choices=[],
            value=[],
            multiselect=True,
            allow_custom_value=True,  # API callers may name a document or tag the list lacks
            elem_id="scope",
            scale=5,
        )
        new_chat = gr.Button("New chat", scale=1, min_width=90, elem_id="new-chat")
    with gr.Accordion("Options", open=False):
        top_k = gr.Slider(1, 10, value=settings.top_k, step=1, label="Pages to retrieve")
        max_new_tokens = gr.Slider(
            16, 2048, value=settings.max_new_tokens, step=16, label="Answer length (tokens)"
        )
        rewrite = gr.Checkbox(
            value=True,
            label="Search for follow-ups rewritten as standalone questions",
            elem_id="rewrite",
        )
    gr.Examples(EXAMPLES, question, label="Try (with the sample PDFs)")
    view = pages.render()
    cite = gr.Textbox(visible="hidden", elem_id="cite-target")

    # -- events -----------------------------------------------------------------------------
    private = {"api_visibility": "private"}
    gpu_event = {"concurrency_id": "gpu", "concurrency_limit": 1, **private}
    # Drawing a page needs no model (the vectors are stored): it does not wait for answers.
    view_event = {"concurrency_id": "view", "concurrency_limit": 4, **private}
    inputs = [question, scope, top_k, max_new_tokens, rewrite, *view.settings]
    outputs = [chat, question, *view.outputs]
    asked = [
        submit.click(handlers.ask, inputs, outputs, show_progress="hidden", **gpu_event),
        question.submit(handlers.ask, inputs, outputs, show_progress="hidden", **gpu_event),
    ]
    stop.click(handlers.stop, None, chat, cancels=asked, queue=False, **private)
    for start_over in (new_chat.click, chat.clear):  # the button, or the chat's bin icon
        start_over(
            handlers.new_chat,
            None,
            [chat, question, *view.outputs],
            cancels=asked,
            queue=False,
            **private,
        )
    scope.focus(handlers.scope_choices, scope, scope, **private)
    settings_in = view.settings
    cite.change(handlers.open_citation, [cite, *settings_in], view.outputs, **view_event)
    view.gallery.select(handlers.select_page, settings_in, view.outputs, **view_event)
    view.previous.click(handlers.previous_page, settings_in, view.outputs, **view_event)
    view.next.click(handlers.next_page, settings_in, view.outputs, **view_event)
    view.words.input(handlers.redraw, settings_in, view.outputs, **view_event)
    view.overlay.input(handlers.redraw, settings_in, view.outputs, **view_event)
    view.boxes.input(handlers.redraw, settings_in, view.outputs, **view_event)
    view.opacity.release(handlers.redraw, settings_in, view.outputs, **view_event)
