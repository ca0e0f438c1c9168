"""The documents panel: upload documents (PDFs, images, office files; with per-page progress),
list them, tag them, delete them (after a confirmation). A refused or failed upload says why in
the status line; nothing else on the page changes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from rag import SUPPORTED, PageRate, RagError, types_legend
from ui.collections import Collections
from ui.gpu import gpu
from ui.markdown import escape_markdown

# When each document was added is in /list and the CLI's list; the panel is too narrow for it.
HEADERS = ["Document", "Pages", "Tags", "ID"]
WIDTHS = ["38%", "16%", "20%", "26%"]
@dataclass
class DocumentsPanel:
    table: gr.Dataframe
    choice: gr.Dropdown
    status: gr.Markdown
    list_documents: object  # handler, wired to page load by the shell
    handlers: Handlers


class Handlers:
    """The panel's event handlers; each finds the caller's session from the request."""

    def __init__(self, collections: Collections) -> None:
        self.collections = collections

    def listing(self, request: gr.Request):
        documents = self.collections.session(request).pipeline.documents()
        rows = [[d.name, d.pages, ", ".join(d.tags), d.doc_id] for d in documents]
        choices = [(f"{d.name} ({d.pages} p.)", d.doc_id) for d in documents]
        return gr.update(value=rows or None), gr.update(choices=choices, value=None)

    @gpu
    def index_files(
        self, files: list[str] | None, password: str, request: gr.Request, progress=gr.Progress()
    ):
        if not files:
            raise gr.Error("Choose one or more documents first.")
        pipeline = self.collections.session(request).pipeline

        rates: dict[str, PageRate] = {}

        def report(done: int, total: int, name: str) -> None:
            rate = rates.setdefault(name, PageRate())
            progress((done, total), desc=f"{name}: {rate.describe(done, total)}", unit="pages")

        lines = []
        for file in files:
            try:
                result = pipeline.add_file(Path(file), progress=report, password=password or None)
            except RagError as error:  # not the file's fault: a missing model, say
                lines.append(f"- {escape_markdown(Path(file).name)}: not added: {error}")
                gr.Warning(str(error))
                break
            lines.append(f"- {escape_markdown(result.message)}")
        return "\n".join(lines), self.listing(request)[0]

    def after_upload(self, request: gr.Request):
        """The drop zone emptied for the next batch; the chooser lists the new documents."""
        return None, self.listing(request)[1]

    def tag_document(self, doc: str | None, add: str, remove: str, request: gr.Request):
        """Add and remove tags (separated by spaces or commas) of a document (id or name)."""
        if not doc:
            gr.Warning("Choose a document to tag.")
            return gr.skip(), gr.skip(), gr.skip()
        try:
            document = self.collections.session(request).pipeline.tag(
                doc, add=split_tags(add), remove=split_tags(remove)
            )
        except RagError as error:
            gr.Warning(str(error))
            return gr.skip(), gr.skip(), gr.skip()
        tags = ", ".join(document.tags) or "none"
        return f"{escape_markdown(document.name)}: tags: {tags}.", *self.listing(request)

    def confirm_delete(self, doc: str | None, request: gr.Request):
        """The delete button asks first: the confirmation names the document and its pages."""
        if not doc:
            gr.Warning("Choose a document to delete.")
            return gr.skip(), gr.skip()
        try:
            document = self.collections.session(request).pipeline.find(doc)
        except RagError as error:
            gr.Warning(str(error))
            return gr.skip(), gr.skip()
        question = (
            f"Delete **{escape_markdown(document.name)}** ({document.pages} p.) from the "
            "index? This cannot be undone."
        )
        return gr.update(visible=True), question

    def delete_document(self, doc: str | None, request: gr.Request):
        """Outputs: status, table, chooser, the confirmation row (hidden again)."""
        hidden = gr.update(visible=False)
        if not doc:
            return gr.skip(), gr.skip(), gr.skip(), hidden
        try:
            document = self.collections.session(request).pipeline.delete(doc)
        except RagError as error:  # deleted meanwhile, by another user
            gr.Warning(str(error))
            return gr.skip(), *self.listing(request), hidden
        return f"Deleted {escape_markdown(document.name)}.", *self.listing(request), hidden


def render(collections: Collections) -> DocumentsPanel:
    handlers = Handlers(collections)

    # -- layout -----------------------------------------------------------------------------
    limits = ""
    if collections.public:
        s = collections.pipeline.settings
        limits = (
            "Private to this browser session and deleted when you leave: up to "
            f"{s.public_max_documents} documents of at most {s.public_max_pages} pages "
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
        label="Add documents",
        file_count="multiple",
        file_types=list(SUPPORTED),
        elem_id="files",
        height=120,
    )
    gr.Markdown(types_legend(), elem_id="types")
    if limits:
        gr.Markdown(limits, elem_id="limits")
    status = gr.Markdown(label="status", elem_id="index-status")
    table = gr.Dataframe(
        headers=HEADERS,
        interactive=False,
        label="Documents",
        elem_id="documents",
        wrap=True,
        column_widths=WIDTHS,
    )
    # Custom values let a document be named by id.
    choice = gr.Dropdown(
        label="Document (to tag or delete)",
        choices=[],
        elem_id="delete-choice",
        allow_custom_value=True,
    )
    with gr.Row():
        delete = gr.Button("Delete…", variant="secondary", size="sm", elem_id="delete")
    with gr.Group(visible=False, elem_id="confirm-delete") as confirm:
        question = gr.Markdown()
        with gr.Row():
            really = gr.Button("Yes, delete", variant="stop", size="sm", elem_id="really-delete")
            cancel = gr.Button("Keep it", size="sm", elem_id="keep")
    # Folded: on a phone the question box comes right after the documents panel.
    with gr.Accordion("Tags of the chosen document", open=False, elem_id="tags"), gr.Row():
        add_tags = gr.Textbox(label="Add tags", placeholder="finance 2024", scale=2, max_lines=1)
        remove_tags = gr.Textbox(label="Remove tags", scale=2, max_lines=1)
        retag = gr.Button("Apply tags", scale=1, elem_id="tag")

    # -- events -----------------------------------------------------------------------------
    listed = [status, table, choice]
    # /index returns the status and the table; the chooser is the page's own, refreshed after.
    files.upload(
        handlers.index_files,
        [files, password],
        [status, table],
        api_name="index",
        show_progress_on=status,  # one progress bar, where the result will be written
        # Not the question's slot: a file rendering for long (up to RAG_RENDER_TIMEOUT_S) holds
        # no model; pages are embedded in turns with questions (Models.busy).
        concurrency_id="index",
        concurrency_limit=1,
    ).then(
        handlers.after_upload,
        None,
        [files, choice],  # the drop zone cleared for the next batch
        show_progress="hidden",
        api_visibility="private",
    )
    private = {"api_visibility": "private"}
    delete.click(handlers.confirm_delete, choice, [confirm, question], **private)
    really.click(handlers.delete_document, choice, [*listed, confirm], **private)
    cancel.click(lambda: gr.update(visible=False), None, confirm, **private)
    # The confirmation names one document: choosing another withdraws it.
    choice.change(lambda: gr.update(visible=False), None, confirm, **private)
    retag.click(handlers.tag_document, [choice, add_tags, remove_tags], listed, **private)
    return DocumentsPanel(table, choice, status, handlers.listing, handlers)


def split_tags(text: str) -> list[str]:
    """Tags typed in one box, separated by spaces or commas.

    >>> split_tags("finance, 2024  legal")
    ['finance', '2024', 'legal']
    """
    return [tag for tag in re.split(r"[\s,]+", text or "") if tag]
