"""The documents panel: upload documents (PDFs, images, office files, text; with per-page
progress, each file's line and table row as soon as it is done), list them, tag them, delete
them (after a confirmation). A refused or failed upload says why in the status line (a type
the app does not read too, in the app's words); nothing else on the page changes."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from rag import DocumentNotFoundError, PageRate, RagError, types_legend
from ui.collections import Collections
from ui.gpu import gpu
from ui.markdown import escape_markdown

# When each document was added, and its id, are in /list and the CLI's list, and shown for the
# document chosen below the table: the panel is too narrow for them.
HEADERS = ["Document", "Pages", "Tags"]
WIDTHS = ["52%", "22%", "26%"]
GONE = "That document has been deleted meanwhile (by someone else?); the list is up to date."


@dataclass
class DocumentsPanel:
    table: gr.Dataframe
    choice: gr.Dropdown
    status: gr.Markdown
    list_documents: object  # handler, wired to page load by the shell
    handlers: Handlers
    changed: list  # the events after which the library has changed (for .then)


class Handlers:
    """The panel's event handlers; each finds the caller's session from the request."""

    def __init__(self, collections: Collections) -> None:
        self.collections = collections

    def listing(self, request: gr.Request, chosen: str | None = None):
        """The table and the chooser (``chosen`` kept chosen while it is there)."""
        documents = self.collections.session(request).pipeline.documents()
        choices = [(f"{d.name} ({d.pages} p.)", d.doc_id) for d in documents]
        kept = chosen if chosen in {d.doc_id for d in documents} else None
        return gr.update(value=table(documents)), gr.update(choices=choices, value=kept)

    @gpu
    def index_files(
        self, files: list[str] | None, password: str, request: gr.Request, progress=gr.Progress()
    ):
        """Outputs: status, table; both after each file, so a batch shows its results as
        they come."""
        if not files:
            gr.Warning("Choose one or more documents first.")
            yield gr.skip(), gr.skip()
            return
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
                yield "\n".join(lines), self.listing(request)[0]
                return
            lines.append(f"- {escape_markdown(result.message)}")
            yield "\n".join(lines), self.listing(request)[0]

    def choices(self, chosen: str | None, request: gr.Request):
        """The chooser's documents, read afresh whenever it is opened (another user may have
        added or deleted some)."""
        return self.listing(request, chosen)[1]

    def after_upload(self, chosen: str | None, request: gr.Request):
        """The drop zone emptied for the next batch; the chooser lists the new documents."""
        return None, self.listing(request, chosen)[1]

    def details(self, doc: str | None, request: gr.Request) -> str:
        """The chosen document's id, when it was added and its tags, under the chooser."""
        if not doc:
            return ""
        try:
            return details_line(self.collections.session(request).pipeline.find(doc))
        except RagError:
            return ""

    def tag_document(self, doc: str | None, add: str, remove: str, request: gr.Request):
        """Add and remove tags (separated by spaces or commas) of a document (id or name).
        Outputs: status, table, chooser (the document stays chosen), its tags, the two tag
        boxes (emptied once applied)."""
        if not doc:
            gr.Warning("Choose a document to tag.")
            return (gr.skip(),) * 6
        try:
            document = self.collections.session(request).pipeline.tag(
                doc, add=split_tags(add), remove=split_tags(remove)
            )
        except DocumentNotFoundError:
            gr.Warning(GONE)
            return gr.skip(), *self.listing(request), "", gr.skip(), gr.skip()
        except RagError as error:  # a bad tag: the boxes keep it, to be corrected
            gr.Warning(str(error))
            return (gr.skip(),) * 6
        tags = ", ".join(document.tags) or "none"
        status = f"{escape_markdown(document.name)}: tags: {escape_markdown(tags)}."
        return status, *self.listing(request, document.doc_id), details_line(document), "", ""

    def confirm_delete(self, doc: str | None, request: gr.Request):
        """The delete button asks first: the confirmation names the document and its pages."""
        if not doc:
            gr.Warning("Choose a document to delete.")
            return gr.skip(), gr.skip()
        try:
            document = self.collections.session(request).pipeline.find(doc)
        except RagError:
            gr.Warning(GONE)
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
        except RagError:  # deleted meanwhile, by another user
            gr.Warning(GONE)
            return gr.skip(), *self.listing(request), hidden
        return f"Deleted {escape_markdown(document.name)}.", *self.listing(request), hidden


def table(documents) -> pd.io.formats.style.Styler | None:
    """The documents as the table shows them: the names as they are (what /index returns),
    shown with line-break chances after ``_``, ``.`` and ``-`` (``breakable``)."""
    if not documents:
        return None
    rows = [[d.name, d.pages, ", ".join(d.tags)] for d in documents]
    return pd.DataFrame(rows, columns=HEADERS).style.format({"Document": breakable})


def breakable(name: str) -> str:
    """``name`` as HTML that may wrap after its separators, never inside a word.

    >>> breakable("pdfjs__trace<x>.pdf")
    'pdfjs__<wbr>trace&lt;x&gt;.<wbr>pdf'
    """
    return re.sub(r"([_.\-]+)", r"\1<wbr>", html.escape(name))


def details_line(document) -> str:
    """The chosen document: name, pages, when it was added, its whole id, its tags."""
    tags = ", ".join(document.tags) or "none"
    return (
        f"**{escape_markdown(document.name)}** · {document.pages} p."
        f" · added {document.added[:10]} · id `{document.doc_id}` · tags: {escape_markdown(tags)}"
    )


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
    # Any type is taken: one the app does not read gets its "refused:" line, as a damaged
    # file does, rather than Gradio's own error.
    files = gr.File(label="Add documents", file_count="multiple", elem_id="files", height=120)
    gr.Markdown(types_legend(), elem_id="types")
    if limits:
        gr.Markdown(limits, elem_id="limits")
    # Its label names the API's output (never "status": an id of Gradio's own translations,
    # which warns in the browser's console on every load).
    status = gr.Markdown(label="indexed", show_label=False, elem_id="index-status")
    table = gr.Dataframe(
        headers=HEADERS,
        interactive=False,
        label="Documents",
        elem_id="documents",
        wrap=True,
        column_widths=WIDTHS,
        datatype=["html", "number", "str"],  # the names' display only: the data is plain
    )
    # Custom values let a document be named by id.
    choice = gr.Dropdown(
        label="Document (to tag or delete)",
        choices=[],
        elem_id="delete-choice",
        allow_custom_value=True,
    )
    chosen = gr.Markdown(elem_id="doc-details")
    with gr.Row():
        delete = gr.Button("Delete…", variant="secondary", size="sm", elem_id="delete")
    with gr.Group(visible=False, elem_id="confirm-delete") as confirm:
        question = gr.Markdown()
        with gr.Row():
            really = gr.Button("Yes, delete", variant="stop", size="sm", elem_id="really-delete")
            cancel = gr.Button("Keep it", size="sm", elem_id="keep")
    # Folded: on a phone the question box comes right after the documents panel.
    with gr.Accordion("Tags of the chosen document", open=False, elem_id="tags"), gr.Row():
        add_tags = gr.Textbox(
            label="Add tags",
            placeholder="finance 2024",
            scale=2,
            max_lines=1,
            elem_id="add-tags",
        )
        remove_tags = gr.Textbox(label="Remove tags", scale=2, max_lines=1, elem_id="remove-tags")
        retag = gr.Button("Apply tags", scale=1, elem_id="tag")

    # -- events -----------------------------------------------------------------------------
    listed = [status, table, choice]
    private = {"api_visibility": "private"}
    # /index returns the status and the table; the chooser is the page's own, refreshed after.
    uploaded = files.upload(
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
        choice,
        [files, choice],  # the drop zone cleared for the next batch
        show_progress="hidden",
        **private,
    )
    delete.click(handlers.confirm_delete, choice, [confirm, question], **private)
    deleted = really.click(handlers.delete_document, choice, [*listed, confirm], **private)
    cancel.click(lambda: gr.update(visible=False), None, confirm, **private)
    # The confirmation names one document: choosing another withdraws it.
    choice.change(lambda: gr.update(visible=False), None, confirm, **private)
    choice.change(handlers.details, choice, chosen, **private)
    choice.focus(handlers.choices, choice, choice, **private)
    tagged = retag.click(
        handlers.tag_document,
        [choice, add_tags, remove_tags],
        [*listed, chosen, add_tags, remove_tags],
        **private,
    )
    return DocumentsPanel(
        table, choice, status, handlers.listing, handlers, [uploaded, deleted, tagged]
    )


def split_tags(text: str) -> list[str]:
    """Tags typed in one box, separated by spaces or commas.

    >>> split_tags("finance, 2024  legal")
    ['finance', '2024', 'legal']
    """
    return [tag for tag in re.split(r"[\s,]+", text or "") if tag]
