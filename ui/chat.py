"""The conversation: ask, follow up, stop, start over; each turn with its own pages.

A turn shows the question, a note of what was searched (the follow-up rewritten to stand
alone, and within which documents), then the answer as it streams. Citations in the answers
are links (made in the browser by ``CITATION_LINKS``) that open that turn's page in the page
view. Problems a user can fix (an empty question, no documents yet, a deleted document) are
toasts that leave the page as it was, never error badges. A reload of the tab keeps the
conversation (``Collections.resume``).
"""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from rag import CITATION_PATTERN, RagError
from ui import pages
from ui.collections import ChatTurn, Collections, Session
from ui.gpu import gpu
from ui.markdown import literal_markdown

DOC, TAG = "doc:", "tag:"  # scope values: "doc:ID" (or a bare id or name) and "tag:T"
STOPPED = " *(stopped)*"
# Questions about the sample PDFs (samples/), offered while their document is indexed.
EXAMPLES = {
    "What was the revenue in 2024?": "annual_report.pdf",
    "Which product line grew fastest?": "annual_report.pdf",
    "Who approved the travel expense claim?": "expense_form.pdf",
    "When is general availability of Project Falcon planned?": "product_slides.pdf",
    "Какая рабочая температура датчика?": "multilingual.pdf",
}
EMPTY_LIBRARY = (
    "Add documents in the Documents panel (beside this; further down on a phone), then ask "
    "about them. Follow-up questions are understood in context."
)
READY = (
    "Ask about your documents ({count} indexed). Follow-up questions are understood in "
    "context; the cited pages open in the page view."
)
KEY_STORE = "rag-chat-key"  # the tab's key in sessionStorage (ui.collections)

# The browser script that turns citations in the answers into links (ui/citations.js), with
# the engine's citation pattern put in: the format is written once, in rag.citations.
CITATION_LINKS = (
    "<script>\nconst CITATION_PATTERN = "
    + json.dumps(CITATION_PATTERN)
    + ";\n"
    + (Path(__file__).parent / "citations.js").read_text()
    + "</script>\n"
)


@dataclass
class Conversation:
    chat: gr.Chatbot
    question: gr.Textbox
    submit: gr.Button
    stop: gr.Button
    scope: gr.Dropdown
    new_chat: gr.Button
    examples: gr.Dataset
    top_k: gr.Slider
    max_new_tokens: gr.Slider
    rewrite: gr.Checkbox
    key: gr.Textbox  # the tab's key, kept in sessionStorage
    handlers: Handlers

    @property
    def library_outputs(self) -> list:
        """What changes with the library (``Handlers.library_changed``)."""
        return [self.scope, self.chat, self.examples]


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
        evidence: bool,
        request: gr.Request,
    ):
        """Outputs: chat, question box, scope, stop button, then the page view's outputs."""
        look = (word, overlay, opacity, boxes, evidence)
        session = self.collections.session(request)
        keep = (gr.skip(),) * 2 + pages.UNCHANGED
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question first.")
            yield gr.skip(), gr.skip(), *keep
            return
        stale = stale_scope(session, scope or [])
        if stale:  # deleted since it was chosen (here or by another user): it leaves the box
            gr.Warning(stale_message(session, stale, scope or []))
            yield gr.skip(), gr.skip(), self._scope(session, scope), *keep[1:]
            return
        session.asking, session.stop_asked = True, False
        options = (int(top_k), int(max_new_tokens), rewrite)
        try:
            yield from self._answer(session, question, scope or [], options, look)
        finally:
            session.asking = False

    def _answer(
        self,
        session: Session,
        question: str,
        scope: list[str],
        options: tuple[int, int, bool],
        look: pages.Look,
    ):
        """``ask`` once the question is fine: ``options`` are (top_k, max_new_tokens,
        rewrite)."""
        top_k, max_new_tokens, rewrite = options
        idle = gr.update(interactive=False)
        pending = {"role": "assistant", "content": "", "metadata": {"title": "Searching…"}}
        pending["metadata"]["status"] = "pending"
        asked = {"role": "user", "content": question}
        busy = gr.update(interactive=True)
        yield [*messages(session.turns), asked, pending], "", gr.skip(), busy, *pages.UNCHANGED
        try:
            turn = self._retrieve(session, question, scope, top_k, rewrite)
        except RagError as error:  # nothing to search, an unknown document, a missing model
            gr.Warning(str(error))
            yield messages(session.turns), question, gr.skip(), idle, *pages.UNCHANGED
            return
        index = len(session.turns) - 1
        view = pages.show(session, index, 0, look) if turn.answer.hits else pages.UNCHANGED
        yield messages(session.turns), gr.skip(), gr.skip(), gr.skip(), *view
        try:
            for _ in self._write(session, turn, max_new_tokens):
                yield messages(session.turns), gr.skip(), gr.skip(), gr.skip(), *pages.UNCHANGED
        finally:
            turn.done = True
        # The thumbnails' "cited" marks are known now (and the title's, for the page shown).
        view = pages.UNCHANGED
        if turn.answer.hits and session.view[0] == index and turn in session.turns:
            view = pages.show(session, index, session.view[1], look)
        yield messages(session.turns), gr.skip(), gr.skip(), idle, *view

    def _write(self, session: Session, turn: ChatTurn, max_new_tokens: int):
        """The answer into ``turn``, a piece at a time (yielding after each), until it ends or
        stop is pressed (not one more piece then, even in flight)."""
        if session.stop_asked:  # pressed while the pages were searched
            turn.stopped = True
            return
        try:
            with closing(turn.answer.stream(max_new_tokens)) as pieces:
                for piece in pieces:
                    if session.stop_asked or turn.stopped:
                        turn.stopped = True
                        return
                    turn.text += piece
                    yield
        except RagError as error:  # a retrieved document was deleted before the answer began
            gr.Warning(str(error))
            turn.stopped = True

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
        """The stop button: the answer being written ends where it is (at its next piece,
        which frees the model); a finished answer is never touched. Outputs: chat, stop."""
        session = self.collections.session(request)
        if session.asking:
            session.stop_asked = True
            if session.turns and not session.turns[-1].done:
                session.turns[-1].stopped = True
        return messages(session.turns), gr.update(interactive=False)

    def new_chat(self, request: gr.Request):
        """Outputs: chat, stop, then the page view's. The question being typed stays."""
        session = self.collections.session(request)
        session.leave()  # an answer being written stops
        session.turns.clear()
        session.view = (0, 0)
        return [], gr.update(interactive=False), *pages.cleared()

    def scope_choices(self, chosen: list[str] | None, request: gr.Request):
        """What can be searched within, read afresh whenever the selector is opened: each
        document, then each tag."""
        return self._scope(self.collections.session(request), chosen)

    def library_changed(self, chosen: list[str] | None, request: gr.Request):
        """After an upload, a tag or a delete: the scope's choices (a deleted document leaves
        them, and the chosen ones), the empty chat's hint and the examples, read afresh."""
        session = self.collections.session(request)
        documents = session.pipeline.documents()
        return (
            self._scope(session, chosen, documents),
            gr.update(placeholder=placeholder(documents)),
            examples_update(documents),
        )

    def restore(self, key: str | None, chosen: list[str] | None, request: gr.Request):
        """The tab (re)opened: its key, its conversation if a reload kept it, the library's
        state (``library_outputs``), then the page view as it was."""
        session = self.collections.resume(request, key)
        view = pages.cleared()
        if session.turns:
            turn, hit = session.view
            view = pages.show(session, turn, hit, (None, True, pages.ALPHA, True, False))
        documents = session.pipeline.documents()
        chat = gr.update(value=messages(session.turns), placeholder=placeholder(documents))
        scope = self._scope(session, chosen, documents)
        return session.key, scope, chat, examples_update(documents), *view

    def _scope(self, session: Session, chosen: list[str] | None, documents=None):
        documents = session.pipeline.documents() if documents is None else documents
        choices = [(f"{d.name} ({d.pages} p.)", f"{DOC}{d.doc_id}") for d in documents]
        tags = sorted({tag for d in documents for tag in d.tags})
        choices += [(f"tag: {tag}", f"{TAG}{tag}") for tag in tags]
        session.names.update({value: label.rsplit(" (", 1)[0] for label, value in choices})
        known = {value for _, value in choices}
        kept = [v for v in chosen or [] if v in known or not v.startswith((DOC, TAG))]
        return gr.update(choices=choices, value=kept)


def stale_scope(session: Session, scope: list[str]) -> list[str]:
    """The chosen scope values whose document was deleted (or whose tag no document has any
    more) since they were offered. A bare name or id typed in is left to the engine."""
    chosen = [v for v in scope if v.startswith((DOC, TAG))]
    if not chosen:
        return []
    documents = session.pipeline.documents()
    known = {f"{DOC}{d.doc_id}" for d in documents}
    known |= {f"{TAG}{tag}" for d in documents for tag in d.tags}
    return [v for v in chosen if v not in known]


def stale_message(session: Session, stale: list[str], scope: list[str]) -> str:
    """Why the question waits, naming what left the scope (never by its id).

    >>> s = Session(None, names={"doc:3f2a": "report.pdf"})
    >>> stale_message(s, ["doc:3f2a"], ["doc:3f2a", "tag:legal"])
    'report.pdf left Search within: deleted since you chose it. Ask again to search the rest.'
    """
    names = ", ".join(session.names.get(v, "a document deleted since") for v in stale)
    rest = "the rest" if len(stale) < len(scope) else "all documents"
    return f"{names} left Search within: deleted since you chose it. Ask again to search {rest}."


def placeholder(documents) -> str:
    """The empty chat's hint: add documents, or ask about those there are."""
    return READY.format(count=len(documents)) if documents else EMPTY_LIBRARY


def examples_update(documents) -> dict:
    """The examples whose sample document is indexed (none: the examples are hidden)."""
    names = {d.name for d in documents}
    shown = [[question] for question, sample in EXAMPLES.items() if sample in names]
    return gr.update(samples=shown, visible=bool(shown))


def messages(turns: list[ChatTurn]) -> list[dict]:
    """The chat as Gradio's Chatbot shows it: per turn, the question, a folded note of what was
    searched where and which pages were found, and the answer."""
    shown: list[dict] = []
    for turn in turns:
        answer = turn.answer
        searched = f"searched for: {answer.searched}" if answer.rewritten else "searched"
        found = ", ".join(hit.citation for hit in answer.hits) or "no pages"
        note = f"Within {literal_markdown(turn.scope)}: {literal_markdown(found)}"
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


def render(collections: Collections) -> Conversation:
    """The conversation's components (events: ``wire``, once the page view exists)."""
    settings = collections.pipeline.settings
    chat = gr.Chatbot(
        label="Conversation",
        elem_id="chat",
        height=520,
        buttons=["copy", "copy_all"],
        feedback_options=None,
        group_consecutive_messages=False,  # one copy button per answer, for the answer alone
        placeholder=EMPTY_LIBRARY,
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
        stop = gr.Button(
            "Stop", variant="stop", scale=1, min_width=60, elem_id="stop", interactive=False
        )
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
    examples = gr.Examples([[q] for q in EXAMPLES], question, label="Try", elem_id="examples")
    examples.dataset.visible = False  # until the library says a sample is there
    key = gr.Textbox(visible="hidden", elem_id="chat-key")
    return Conversation(
        chat,
        question,
        submit,
        stop,
        scope,
        new_chat,
        examples.dataset,
        top_k,
        max_new_tokens,
        rewrite,
        key,
        Handlers(collections),
    )


def wire(conversation: Conversation, view: pages.PageView) -> None:
    """The conversation's events: asking shows the turn's pages in ``view``."""
    c, handlers = conversation, conversation.handlers
    private = {"api_visibility": "private"}
    inputs = [c.question, c.scope, c.top_k, c.max_new_tokens, c.rewrite, *view.settings]
    outputs = [c.chat, c.question, c.scope, c.stop, *view.outputs]
    asking = {"concurrency_id": "gpu", "concurrency_limit": 1, "show_progress": "hidden"}
    asked = [
        c.submit.click(handlers.ask, inputs, outputs, **asking, **private),
        c.question.submit(handlers.ask, inputs, outputs, **asking, **private),
    ]
    # Stop asks the answer to end; the answer's own event writes its last words and
    # "(stopped)", so nothing it sends can arrive after the stop and undo it.
    c.stop.click(handlers.stop, None, [c.chat, c.stop], queue=False, **private)
    for start_over in (c.new_chat.click, c.chat.clear):  # the button, or the chat's bin icon
        start_over(
            handlers.new_chat,
            None,
            [c.chat, c.stop, *view.outputs],
            cancels=asked,
            queue=False,
            **private,
        )
    c.scope.focus(handlers.scope_choices, c.scope, c.scope, **private)


def wire_load(demo: gr.Blocks, conversation: Conversation, view: pages.PageView):
    """On opening the tab: its key read from sessionStorage, the session resumed (after a
    reload: the conversation as it was), and the key stored again. Returns the event, for
    what must wait for the session (``.then``)."""
    c = conversation
    read = f"(key, scope) => [sessionStorage.getItem({json.dumps(KEY_STORE)}) || '', scope]"
    store = f"(key) => {{ sessionStorage.setItem({json.dumps(KEY_STORE)}, key); return []; }}"
    return demo.load(
        c.handlers.restore,
        [c.key, c.scope],
        [c.key, *c.library_outputs, *view.outputs],
        js=read,
        api_visibility="private",
    ).then(None, c.key, None, js=store, api_visibility="private")
