"""The named HTTP API (gradio_client, or plain HTTP), apart from the page's own events, so that
each endpoint takes typed arguments and returns what a script needs.

    /ask(question, scope, history, top_k, max_new_tokens, rewrite, evidence) -> {question,
         searched, scope, hits, words, answer}, streamed (each update has the answer so far);
         with ``evidence``, each hit has its evidence boxes from the second update on
         ([{box: [x0, y0, x1, y1] page-relative, words, score, source}])
    /page(index, word, heatmap, evidence) -> (page image, title): a page of the caller's last
         answer (with ``evidence``, its evidence boxes drawn in green)
    /list() -> [{doc_id, name, pages, added, tags}]
    /delete(doc) -> message;  /tag(doc, add, remove) -> the document's tags
    /index(files, password) is the upload box's own event (ui.documents).

A client keeps its session between calls, so /page reads the answer of its own last /ask.
Behind a login every endpoint acts as the person signed in (gradio_client: ``Client(url,
auth=(name, password))``): /list, /ask and /page see what they may read, /delete and /tag
follow the owner's rules. /page's image is a page file (``ui.pagefiles``): its URL serves that
person only, while they may read the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import gradio as gr

from rag import Answer, RagError, from_messages
from ui.chat import split_scope
from ui.collections import Collections
from ui.gpu import gpu
from ui.pages import WHOLE_QUERY


class Api:
    def __init__(self, collections: Collections) -> None:
        self.collections = collections

    @gpu
    def ask(  # noqa: PLR0917 (clients may pass the arguments positionally)
        self,
        question: str,
        scope: list[str] | None = None,
        history: list[dict] | None = None,
        top_k: int | None = None,
        max_new_tokens: int | None = None,
        rewrite: bool = True,
        evidence: bool = False,
        request: gr.Request = None,
    ) -> Iterator[dict]:
        """Answer ``question`` within ``scope`` ("doc:ID", a document id or name, "tag:T"; empty:
        everything), after the conversation ``history`` (chat messages: ``{"role": "user" |
        "assistant", "content": str}``), a follow-up searched as a standalone question unless
        ``rewrite`` is false. Streams dicts: question, searched, scope, hits, answer so far.
        With ``evidence``, the pages first, then each hit with its evidence boxes (a heatmap
        pass per page), then the answer."""
        if top_k is not None and top_k < 1:
            raise gr.Error(f"top_k must be at least 1, got {top_k}")
        session = self.collections.session(request)
        docs, tags = split_scope(scope or [])
        try:
            answer = session.pipeline.ask(
                question,
                top_k,
                docs,
                tags,
                history=from_messages(history or []),
                rewrite=rewrite,
            )
        except RagError as error:
            raise gr.Error(str(error)) from None
        session.api_answer = answer
        result = {**describe(answer), "scope": scope or [], "answer": ""}
        yield dict(result)
        if evidence:
            result["hits"] = with_evidence(answer, result["hits"])
            yield dict(result)
        with closing(answer.stream(max_new_tokens)) as pieces:
            for piece in pieces:
                result["answer"] += piece
                yield dict(result)

    @gpu
    def page(
        self, index: float, word: str | None, heatmap: bool, evidence: bool, request: gr.Request
    ):
        """Page ``index`` (0-based) of the caller's last answer, with the heatmap of the whole
        question or of one ``word`` of what was searched (or none, with ``heatmap`` false),
        its evidence boxes if ``evidence``, and its title."""
        session = self.collections.session(request)
        answer = session.api_answer or (session.turns[-1].answer if session.turns else None)
        if answer is None:
            raise gr.Error("Ask a question first (/ask).")
        index = int(index)
        count = len(answer.hits)
        if not 0 <= index < count:
            raise gr.Error(
                f"page index {index} is out of range: the last answer retrieved {count} "
                f"pages (0 to {count - 1})"
            )
        hit = answer.hits[index]
        try:
            image = answer.view(
                hit,
                word_index(answer, word),
                heatmap=heatmap,
                boxes=False,
                evidence=bool(evidence),
            )
            image = session.publish(image, hit.doc_id, f"page-{hit.page_number}")
        except RagError as error:
            raise gr.Error(str(error)) from None
        return image, f"{hit.name}, page {hit.page_number} (score {hit.score:.2f})"

    def list(self, request: gr.Request = None) -> list[dict]:
        """Every document the caller may read: id, name, pages, when it was added, tags,
        owner, who may read it."""
        return listing(self.collections.session(request).pipeline.documents())

    def delete(self, doc: str, request: gr.Request = None) -> str:
        """Delete the document ``doc`` (an id or an exact name)."""
        try:
            document = self.collections.session(request).pipeline.delete(doc)
        except RagError as error:
            raise gr.Error(str(error)) from None
        return f"Deleted {document.name} ({document.doc_id})."

    def tag(
        self,
        doc: str,
        add: list[str] | None = None,
        remove: list[str] | None = None,
        request: gr.Request = None,
    ) -> list[str]:
        """Add and remove tags of the document ``doc`` (an id or an exact name); returns its
        tags."""
        try:
            document = self.collections.session(request).pipeline.tag(
                doc, add=add or [], remove=remove or []
            )
        except RagError as error:
            raise gr.Error(str(error)) from None
        return list(document.tags)


def listing(documents: list) -> list[dict]:
    """Documents as /list and the list_documents tool return them."""
    return [
        {"doc_id": d.doc_id, "name": d.name, "pages": d.pages, "added": d.added}
        | {"tags": list(d.tags), "owner": d.owner, "visibility": d.visibility}
        for d in documents
    ]


def describe(answer: Answer) -> dict:
    hits = [
        {
            "doc_id": h.doc_id,
            "name": h.name,
            "page": h.page_number,
            "score": round(h.score, 4),
            "visual_score": None if h.visual_score is None else round(h.visual_score, 4),
            "text_score": None if h.text_score is None else round(h.text_score, 4),
            "rerank_score": None if h.rerank_score is None else round(h.rerank_score, 4),
            "citation": h.citation,
        }
        for h in answer.hits
    ]
    words = [word.text for word in answer.words]  # what /page takes as ``word``
    return {"question": answer.question, "searched": answer.searched, "hits": hits, "words": words}


def with_evidence(answer: Answer, hits: list[dict]) -> list[dict]:
    """``hits`` (as ``describe`` gives them) each with its page's evidence boxes."""
    return [
        {**found, "evidence": [box.as_json() for box in answer.evidence(hit)]}
        for found, hit in zip(hits, answer.hits, strict=True)
    ]


def word_index(answer: Answer, word: str | None) -> int | None:
    """Which of the answer's words ``word`` is (None: the whole question)."""
    if not word or word == WHOLE_QUERY:
        return None
    texts = [w.text for w in answer.words]
    if word not in texts:
        raise gr.Error(f"{word!r} is not a word of {answer.searched!r}; its words: {texts}")
    return texts.index(word)


def render(collections: Collections) -> None:
    """Register the endpoints (inside the Blocks)."""
    api = Api(collections)
    gpu_event = {"concurrency_id": "gpu", "concurrency_limit": 1}
    gr.api(api.ask, api_name="ask", **gpu_event)
    gr.api(api.list, api_name="list")
    gr.api(api.delete, api_name="delete")
    gr.api(api.tag, api_name="tag")
    # /page returns an image: it needs components (hidden) rather than gr.api's JSON.
    with gr.Column(visible=False):
        index = gr.Number(label="index", value=0, precision=0)
        word = gr.Textbox(label="word", value=WHOLE_QUERY)
        heatmap = gr.Checkbox(label="heatmap", value=True)
        evidence = gr.Checkbox(label="evidence", value=False)
        image = gr.Image(label="page", format="png")
        title = gr.Textbox(label="title")
        trigger = gr.Button()
    trigger.click(
        api.page,
        [index, word, heatmap, evidence],
        [image, title],
        api_name="page",
        concurrency_id="view",
        concurrency_limit=4,
    )
