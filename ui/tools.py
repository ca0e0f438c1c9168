"""The MCP tools, served by Gradio's own MCP server at /gradio_api/mcp (streamable HTTP):

    search_documents(question, documents, tags, top_k) -> pages: document, page, scores, snippet
    ask_documents(question, history, documents, tags, top_k) -> answer (with its citations),
                                                                 the pages it read
    list_documents(tag) -> documents: id, name, pages, added, tags
    get_page(document, page, question) -> the page image (MCP image content), with the heatmap
                                          of ``question`` over it when one is given

Each is stateless: one caller's call never reads another's. They serve the library (the
shared collection), through the same pipeline verbs as the web app and its HTTP API, under the
line of waiting requests shared with /v1 (ui.gate), each call acting as its person: the owner
of its API key, else the person signed in to the web app (``Identify``), who sees exactly what
they may read. A bad argument is one clear line (the MCP client receives it as the tool's
error result).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import gradio as gr

from rag import Caller, Pipeline, RagError, from_messages
from ui.api import describe, listing
from ui.gate import Busy, Gate, Keys, check_question
from ui.pagefiles import PageFiles

NAMES = ("search_documents", "ask_documents", "list_documents", "get_page")
MAX_TOP_K = 20


class ToolError(gr.Error):
    """gr.Error whose text is the message itself (gr.Error's is its repr, quotes and all):
    what an MCP client reads."""

    def __str__(self) -> str:
        return str(self.message)


class Identify:
    """Whom a tool call acts for: the person whose API key it carries (``keys``), else the
    person signed in to the web app (``web_caller``: a call through Gradio's own API)."""

    def __init__(self, keys: Keys, web_caller: Callable[[gr.Request], Caller]) -> None:
        self.keys = keys
        self.web_caller = web_caller

    def __call__(self, request: gr.Request) -> Caller:
        headers = {k.lower().encode("latin-1"): v.encode("latin-1") for k, v in _headers(request)}
        return self.keys.caller(headers) or self.web_caller(request)


def _headers(request: gr.Request) -> list[tuple[str, str]]:
    return list(getattr(request, "headers", {}).items()) if request is not None else []


class Tools:
    def __init__(
        self, pipeline: Pipeline, gate: Gate, identify: Identify, files: PageFiles | None = None
    ) -> None:
        self.pipeline = pipeline
        self.gate = gate
        self.identify = identify
        self.files = files

    def _acting(self, request: gr.Request) -> Pipeline:
        return self.pipeline.acting_for(self.identify(request))

    def search_documents(
        self,
        question: str,
        documents: list[str] | None = None,
        tags: list[str] | None = None,
        top_k: int = 5,
        request: gr.Request = None,
    ) -> str:
        """Search the indexed documents (PDFs, office files, images, e-mails) for the pages that
        best match a question, by the pages' pictures and their words. Use it to find where
        something is written before reading pages with get_page.

        Args:
            question: what to look for, in words (a question or keywords)
            documents: only these documents (ids or exact names from list_documents); empty: all
            tags: only documents carrying any of these tags; empty: all
            top_k: how many pages to return (1 to 20)
        Returns:
            JSON: the pages, best first: doc_id, name, page (1-based), score, citation, snippet
        """
        answer = self._ask(request, question, documents, tags, top_k, rewrite=False)
        pages = describe(answer)["hits"]
        for page, hit in zip(pages, answer.hits, strict=True):
            page["snippet"] = snippet_text(answer, hit)
        return as_json(pages)

    def ask_documents(  # noqa: PLR0917 (a tool's arguments are its signature, for MCP)
        self,
        question: str,
        history: list[dict] | None = None,
        documents: list[str] | None = None,
        tags: list[str] | None = None,
        top_k: int = 3,
        request: gr.Request = None,
    ) -> str:
        """Answer a question from the indexed documents: the best pages are found and a
        vision-language model reads their images and writes an answer that cites them, as
        [report.pdf p.3]. Slower than search_documents (a model writes the answer). A follow-up
        question is searched as a standalone question written from the history.

        Args:
            question: the question
            history: the conversation so far: [{"role": "user" | "assistant", "content": ...}]
            documents: only these documents (ids or exact names from list_documents); empty: all
            tags: only documents carrying any of these tags; empty: all
            top_k: how many pages the answer reads (1 to 20)
        Returns:
            JSON: answer (with citations), searched (a follow-up rewritten to stand alone),
            pages (doc_id, name, page, score, citation)
        """
        if history is not None and not valid_history(history):
            raise ToolError(
                "history: a list of messages {'role': 'user' | 'assistant', 'content': '...'}"
            )
        answer = self._ask(request, question, documents, tags, top_k, history=history or [])
        with self._held():
            try:
                text = answer.text()
            except RagError as error:
                raise ToolError(str(error)) from None
        found = describe(answer)
        return as_json({"answer": text, "searched": found["searched"], "pages": found["hits"]})

    def list_documents(self, tag: str = "", request: gr.Request = None) -> str:
        """List the indexed documents, or those carrying a tag.

        Args:
            tag: only documents carrying this tag; empty: every document
        Returns:
            JSON: the documents: doc_id, name, pages, added (ISO date), tags
        """
        documents = self._acting(request).documents([tag] if tag.strip() else [])
        if tag.strip() and not documents:
            raise ToolError(f"no document is tagged {tag.strip()!r}")
        return as_json(listing(documents))

    def get_page(self, document: str, page: float, question: str = "", request: gr.Request = None):
        """Get one page of a document as an image, to read it or show it. With a question, the
        page comes with a heatmap over it: the patches that matched the question's words.

        Args:
            document: the document's id or exact name (from list_documents or search_documents)
            page: the page number, from 1
            question: optional; draw the heatmap of this question over the page
        Returns:
            the page image (PNG) and a caption
        """
        document = (document or "").strip()
        if not document:
            raise ToolError("document: a document id or exact name is required")
        if page is None or page != int(page):
            raise ToolError(f"page: a whole page number from 1, got {page!r}")
        number = int(page)
        pipeline = self._acting(request)
        with self._held():
            try:
                found = pipeline.find(document)
                image = pipeline.page_image(found.doc_id, number)  # the range checked
                if not question.strip():
                    return self._published(image, found.doc_id, pipeline), caption(
                        found.name, number
                    )
                question = checked(question)
                answer = pipeline.ask(question, found.pages, [found.doc_id], rewrite=False)
                hit = next((h for h in answer.hits if h.page_number == number), None)
                if hit is None:
                    raise ToolError(
                        f"page {number} of {found.name} was not ranked for this question"
                    )
                shown = self._published(answer.heatmap_image(hit), found.doc_id, pipeline)
                return shown, caption(found.name, number, hit.score)
            except RagError as error:
                raise ToolError(str(error)) from None

    def _published(self, image, doc_id: str, pipeline: Pipeline):
        """``image`` as the tool returns it: a page file only its person may fetch, and only
        while they may read the page (``ui.pagefiles``), when the app hands them out."""
        if self.files is None:
            return image
        return self.files.publish(image, doc_id, "page", pipeline.caller.name, pipeline)

    def _ask(self, request, question, documents, tags, top_k, *, history=(), rewrite=True):
        question = checked(question)
        pipeline = self._acting(request)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise ToolError(f"top_k: a whole number from 1 to {MAX_TOP_K}, got {top_k!r}")
        with self._held():
            try:
                return pipeline.ask(
                    question,
                    top_k,
                    strings(documents, "documents"),
                    strings(tags, "tags"),
                    history=from_messages(history),
                    rewrite=rewrite,
                )
            except RagError as error:
                raise ToolError(str(error)) from None

    def _held(self):
        try:
            self.gate.enter()
        except Busy as error:
            raise ToolError(str(error)) from None
        return _Leave(self.gate)


class _Leave:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        self.gate.leave()


def as_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)


def checked(question: str) -> str:
    if not isinstance(question, str):
        raise ToolError("question: text is required")
    try:
        return check_question(question)
    except ValueError as error:
        raise ToolError(str(error)) from None


def strings(values: list[str] | None, name: str) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ToolError(f"{name}: a list of strings")
    return [v.strip() for v in values if v.strip()]


def valid_history(history: object) -> bool:
    return isinstance(history, list) and all(
        isinstance(m, dict) and m.get("role") in ("user", "assistant", "system") for m in history
    )


def caption(name: str, number: int, score: float | None = None) -> str:
    scored = "" if score is None else f" (score {score:.2f})"
    return f"{name}, page {number}{scored}"


def snippet_text(answer, hit) -> str:
    """The page's stretch of text with the most searched words ("" if none), words as read."""
    found = answer.snippet(hit)
    if found is None:
        return ""
    text = " ".join(word for word, _ in found.words)
    return ("… " if found.cut_before else "") + text + (" …" if found.cut_after else "")


def render(
    demo: gr.Blocks,
    pipeline: Pipeline,
    gate: Gate,
    identify: Identify,
    files: PageFiles | None = None,
) -> None:
    """Register the tools in ``demo`` as API endpoints (Gradio serves each as an MCP tool);
    they run off Gradio's queue, under ``gate``, each call acting for whom ``identify``
    finds."""
    tools = Tools(pipeline, gate, identify, files)
    with demo:
        for fn in (tools.search_documents, tools.ask_documents, tools.list_documents):
            gr.api(fn, api_name=fn.__name__, queue=False)
        # An image goes back as MCP image content only from an image component.
        with gr.Column(visible=False):
            document = gr.Textbox(label="document")
            page = gr.Number(label="page", value=1, precision=0)
            question = gr.Textbox(label="question", value="")
            image = gr.Image(label="page image", format="png", type="pil")
            title = gr.Textbox(label="caption")
            trigger = gr.Button()
        trigger.click(
            tools.get_page,
            [document, page, question],
            [image, title],
            api_name="get_page",
            queue=False,
        )
