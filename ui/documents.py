"""The documents panel: upload PDFs (with per-page progress), list them, tag them, delete
them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from rag.errors import RagError
from rag.progress import PageRate
from ui.collections import Collections
from ui.gpu import gpu

HEADERS = ["Document", "Pages", "Added", "ID", "Tags"]


@dataclass
class DocumentsPanel:
    table: gr.Dataframe
    choice: gr.Dropdown
    status: gr.Markdown
    list_documents: object  # handler, wired to page load by the shell


class Handlers:
    """The panel's event handlers; each finds the caller's session from the request."""

    def __init__(self, collections: Collections) -> None:
        self.collections = collections

    def listing(self, request: gr.Request):
        documents = self.collections.session(request).pipeline.documents()
        rows = [
            [d.name, d.pages, d.added.replace("T", " ")[:16], d.doc_id, ", ".join(d.tags)]
            for d in documents
        ]
        choices = [(f"{d.name} ({d.pages} p.)", d.doc_id) for d in documents]
        return gr.update(value=rows or None), gr.update(choices=choices, value=None)

    @gpu
    def index_files(
        self, files: list[str] | None, password: str, request: gr.Request, progress=gr.Progress()
    ):
        if not files:
            raise gr.Error("Choose one or more PDF files first.")
        pipeline = self.collections.session(request).pipeline

        rates: dict[str, PageRate] = {}

        def report(done: int, total: int, name: str) -> None:
            rate = rates.setdefault(name, PageRate())
            progress((done, total), desc=f"{name}: {rate.describe(done, total)}", unit="pages")

        lines = []
        for file in files:
            try:
                result = pipeline.add_pdf(Path(file), progress=report, password=password or None)
            except RagError as error:  # not the file's fault: a missing model, say
                raise gr.Error(str(error)) from None
            lines.append(f"- {escape_markdown(result.message)}")
        return "\n".join(lines), *self.listing(request)

    def tag_document(self, doc: str | None, add: str, remove: str, request: gr.Request):
        """Add and remove tags (separated by spaces or commas) of a document (id or name)."""
        if not doc:
            raise gr.Error("Choose a document to tag.")
        try:
            document = self.collections.session(request).pipeline.tag(
                doc, add=split_tags(add), remove=split_tags(remove)
            )
        except RagError as error:
            raise gr.Error(str(error)) from None
        tags = ", ".join(document.tags) or "none"
        return f"{escape_markdown(document.name)}: tags: {tags}.", *self.listing(request)

    def delete_document(self, doc_id: str | None, request: gr.Request):
        if not doc_id:
            raise gr.Error("Choose a document to delete.")
        try:
            document = self.collections.session(request).pipeline.delete(doc_id)
        except RagError as error:
            raise gr.Error(str(error)) from None
        return f"Deleted {escape_markdown(document.name)}.", *self.listing(request)


def render(collections: Collections) -> DocumentsPanel:
    handlers = Handlers(collections)

    # -- layout -----------------------------------------------------------------------------
    limits = ""
    if collections.public:
        s = collections.pipeline.settings
        limits = (
            "Private to this browser session and deleted when you leave: up to "
            f"{s.public_max_documents} PDFs of at most {s.public_max_pages} pages "
            f"and {s.public_max_file_mb} MB each."
        )
    password = gr.Textbox(
        label="Password, for encrypted PDFs (enter it before adding them)",
        type="password",
        value="",
        elem_id="pdf-password",
        max_lines=1,
    )
    files = gr.File(
        label="Add PDFs", file_count="multiple", file_types=[".pdf"], elem_id="files", height=120
    )
    if limits:
        gr.Markdown(limits, elem_id="limits")
    status = gr.Markdown(elem_id="index-status")
    table = gr.Dataframe(
        headers=HEADERS, interactive=False, label="Documents", elem_id="documents", wrap=True
    )
    with gr.Row():
        # Custom values let API clients delete by document id.
        choice = gr.Dropdown(
            label="Document (to tag or delete)",
            choices=[],
            scale=3,
            elem_id="delete-choice",
            allow_custom_value=True,
        )
        delete = gr.Button("Delete", variant="stop", scale=1, elem_id="delete")
    # Folded: on a phone the question box comes right after the documents panel.
    with gr.Accordion("Tags of the chosen document", open=False, elem_id="tags"), gr.Row():
        add_tags = gr.Textbox(label="Add tags", placeholder="finance 2024", scale=2, max_lines=1)
        remove_tags = gr.Textbox(label="Remove tags", scale=2, max_lines=1)
        retag = gr.Button("Apply tags", scale=1, elem_id="tag")

    # -- events -----------------------------------------------------------------------------
    files.upload(
        handlers.index_files,
        [files, password],
        [status, table, choice],
        api_name="index",
        # Not the question's slot: a file rendering for long (up to RAG_RENDER_TIMEOUT_S) holds
        # no model; pages are embedded in turns with questions (Models.busy).
        concurrency_id="index",
        concurrency_limit=1,
    ).then(lambda: None, None, files, api_name=False)  # clear the drop zone for the next batch
    delete.click(handlers.delete_document, choice, [status, table, choice], api_name="delete")
    retag.click(
        handlers.tag_document,
        [choice, add_tags, remove_tags],
        [status, table, choice],
        api_name="tag",
    )
    return DocumentsPanel(table, choice, status, handlers.listing)


def split_tags(text: str) -> list[str]:
    """Tags typed in one box, separated by spaces or commas.

    >>> split_tags("finance, 2024  legal")
    ['finance', '2024', 'legal']
    """
    return [tag for tag in re.split(r"[\s,]+", text or "") if tag]


def escape_markdown(text: str) -> str:
    """``text`` shown literally in Markdown: a file name cannot add links, images or HTML
    (without unescaped brackets or angle brackets there are none); other characters stay
    readable for API clients.

    >>> print(escape_markdown("<img src=x>![a](b)_c.pdf"))
    \\<img src=x\\>!\\[a\\](b)_c.pdf
    """
    return re.sub(r"([\\`\[\]<>&])", r"\\\1", text)
