"""The question panel: ask, read the streamed answer, see why each page was chosen.

Retrieved pages and the top page's heatmap are shown as soon as retrieval is done, before the
answer starts streaming. Cited pages are listed under the answer; clicking one (or a page in
the gallery) brings that page up with its heatmap, for the whole query or any single word.
"""

from __future__ import annotations

import re

import gradio as gr

from rag.errors import RagError
from rag.pipeline import Answer
from ui.collections import Collections
from ui.gpu import gpu

WHOLE_QUERY = "whole query"
DOC, TAG = "doc:", "tag:"  # scope values: "doc:ID" (or a bare id or name) and "tag:T"
EXAMPLES = [
    "What was the revenue in 2024?",
    "Which product line grew fastest?",
    "Who approved the travel expense claim?",
    "When is general availability of Project Falcon planned?",
    "Какая рабочая температура датчика?",
]


class Handlers:
    """The panel's event handlers; each finds the caller's session from the request."""

    def __init__(self, collections: Collections) -> None:
        self.collections = collections

    @gpu
    def ask(
        self,
        question: str,
        top_k: float,
        max_new_tokens: float,
        scope: list[str] | None,
        request: gr.Request,
    ):
        session = self.collections.session(request)
        docs, tags = split_scope(scope or [])
        try:
            answer = session.pipeline.ask(question, int(top_k), docs=docs, tags=tags)
        except RagError as error:
            raise gr.Error(str(error)) from None
        session.answer, session.selected = answer, 0
        gallery = [(str(h.image_path), f"{h.citation} · score {h.score:.2f}") for h in answer.hits]
        yield (
            "",
            gr.update(value=gallery, selected_index=0),
            answer.heatmap_image(answer.hits[0]) if answer.hits else None,
            gr.update(choices=token_choices(answer), value=WHOLE_QUERY),
            gr.update(choices=[], value=None),
        )
        text = ""
        for piece in answer.stream(int(max_new_tokens)):
            text += piece
            # Pages and heatmap were sent once: re-sending images mid-stream breaks them.
            yield text, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        yield text, gr.skip(), gr.skip(), gr.skip(), gr.update(choices=cited(answer, text))

    def scope_choices(self, chosen: list[str] | None, request: gr.Request):
        """What can be searched within, read afresh whenever the selector is opened: each
        document, then each tag."""
        documents = self.collections.session(request).pipeline.documents()
        choices = [(f"{d.name} ({d.pages} p.)", f"{DOC}{d.doc_id}") for d in documents]
        tags = sorted({tag for d in documents for tag in d.tags})
        choices += [(f"tag: {tag}", f"{TAG}{tag}") for tag in tags]
        known = {value for _, value in choices}
        return gr.update(choices=choices, value=[v for v in chosen or [] if v in known])

    @gpu
    def show_page(self, index: float, request: gr.Request):
        session = self.collections.session(request)
        index = int(index)
        if session.answer is None or not 0 <= index < len(session.answer.hits):
            raise gr.Error("Ask a question first.")
        session.selected = index
        image = session.answer.heatmap_image(session.answer.hits[index])
        return image, gr.update(value=WHOLE_QUERY)

    def select_page(self, event: gr.SelectData, request: gr.Request):
        return self.show_page(event.index, request)

    def open_citation(self, citation: str | None, request: gr.Request):
        answer = self.collections.session(request).answer
        if not citation or answer is None:
            return gr.skip(), gr.skip(), gr.skip()
        index = next((i for i, hit in enumerate(answer.hits) if hit.citation == citation), None)
        if index is None:  # not one of this answer's pages
            return gr.skip(), gr.skip(), gr.skip()
        image, token = self.show_page(index, request)
        return gr.update(selected_index=index), image, token

    @gpu
    def show_token(self, token: str | None, request: gr.Request):
        session = self.collections.session(request)
        if session.answer is None or not session.answer.hits:
            raise gr.Error("Ask a question first.")
        hit = session.answer.hits[session.selected]
        if token in (None, WHOLE_QUERY):
            return session.answer.heatmap_image(hit)
        known = {str(t.index): t.index for t in session.answer.tokens}
        if token not in known:  # API callers can send anything
            raise gr.Error(f"{token!r} is not a token of the last question.")
        return session.answer.heatmap_image(hit, known[token])


def render(collections: Collections) -> None:
    settings = collections.pipeline.settings
    handlers = Handlers(collections)

    # -- layout -----------------------------------------------------------------------------
    with gr.Row():
        question = gr.Textbox(
            label="Question", placeholder="Ask about your PDFs…", elem_id="q", scale=5, lines=1
        )
        submit = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
    scope = gr.Dropdown(
        label="Search within (documents and tags; empty: everything)",
        choices=[],
        value=[],
        multiselect=True,
        allow_custom_value=True,  # API callers may name a document or tag the list lacks
        elem_id="scope",
    )
    with gr.Accordion("Options", open=False):
        top_k = gr.Slider(1, 10, value=settings.top_k, step=1, label="Pages to retrieve")
        max_new_tokens = gr.Slider(
            16, 2048, value=settings.max_new_tokens, step=16, label="Answer length (tokens)"
        )
    gr.Examples(EXAMPLES, question, label="Try (with the sample PDFs)")
    answer_box = gr.Markdown(elem_id="answer", label="Answer", min_height=80)
    citations = gr.Radio(
        label="Cited pages — click to view", choices=[], elem_id="cited", interactive=True
    )
    with gr.Row():
        gallery = gr.Gallery(
            label="Retrieved pages", columns=3, height=420, elem_id="pages", allow_preview=False
        )
        with gr.Column():
            heatmap = gr.Image(
                label="Why this page", elem_id="heatmap", interactive=False, format="png"
            )
            token = gr.Radio(
                label="Heatmap for", choices=[WHOLE_QUERY], value=WHOLE_QUERY, elem_id="tokens"
            )

    # -- events -----------------------------------------------------------------------------
    gpu_event = {"concurrency_id": "gpu", "concurrency_limit": 1}
    outputs = [answer_box, gallery, heatmap, token, citations]
    inputs = [question, top_k, max_new_tokens, scope]
    scope.focus(handlers.scope_choices, scope, scope, api_name=False)
    submit.click(handlers.ask, inputs, outputs, api_name="ask", **gpu_event)
    question.submit(handlers.ask, inputs, outputs, api_name=False, **gpu_event)
    gallery.select(handlers.select_page, None, [heatmap, token], api_name=False, **gpu_event)
    citations.select(
        handlers.open_citation, citations, [gallery, heatmap, token], api_name=False, **gpu_event
    )
    token.input(handlers.show_token, token, heatmap, api_name="heatmap", **gpu_event)
    # API only: bring up the n-th retrieved page (0-based) with its whole-query heatmap.
    page = gr.Number(visible=False, precision=0)
    page.change(handlers.show_page, page, [heatmap, token], api_name="page", **gpu_event)


def split_scope(values: list[str]) -> tuple[list[str], list[str]]:
    """Scope values as (documents, tags): ``tag:T`` is a tag, ``doc:X`` or a bare X a document
    id or exact name.

    >>> split_scope(["doc:3f2a", "tag:finance", "report.pdf"])
    (['3f2a', 'report.pdf'], ['finance'])
    """
    docs = [v.removeprefix(DOC) for v in values if not v.startswith(TAG)]
    return docs, [v.removeprefix(TAG) for v in values if v.startswith(TAG)]


def token_choices(answer: Answer) -> list[tuple[str, str]]:
    """Radio choices: the whole query, then each meaningful token (repeats numbered)."""
    choices, seen = [(WHOLE_QUERY, WHOLE_QUERY)], {}
    for token in answer.tokens:
        seen[token.text] = seen.get(token.text, 0) + 1
        label = token.text if seen[token.text] == 1 else f"{token.text} ({seen[token.text]})"
        choices.append((label, str(token.index)))
    return choices


def cited(answer: Answer, text: str) -> list[str]:
    """The retrieved pages the answer cites, in citation order; all of them if it cites none."""
    mentioned = re.findall(r"\[[^\[\]]+ p\.\d+\]", text)
    labels = [hit.citation for hit in answer.hits]
    order = [label for label in dict.fromkeys(mentioned) if label in labels]
    return order or labels
