"""The documents panel: upload documents (PDFs, images, office files, text; with per-page
progress, each file's line and table row as soon as it is done), list them, tag them, delete
them (after a confirmation). A refused or failed upload says why in the status line (a type
the app does not read too, in the app's words); nothing else on the page changes.

Behind a login each upload says who may read it (only its owner, everyone, or a group of the
person's; an admin may name any group), the table says whose each document is and who may
read it, and a document's owner or an admin may change that; the engine decides every action
(``rag.library``: another's document cannot be deleted, retagged or shared) and the panel says
its one line. Gradio's temporary copy of an upload is removed once the file is indexed. With
folders kept in sync (RAG_SYNC), their last sync is one line under the table."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.utils import get_upload_folder

from rag import (
    Caller,
    DocumentNotFoundError,
    PageRate,
    RagError,
    may_change,
    parse_visibility,
    types_legend,
)
from ui.collections import Collections, Session
from ui.gpu import gpu
from ui.markdown import escape_markdown

# When each document was added, and its id, are in /list and the CLI's list, and shown for the
# document chosen below the table: the panel is too narrow for them.
HEADERS = ["Document", "Pages", "Tags"]
WIDTHS = ["52%", "22%", "26%"]
# Behind a login: whose each document is and who else may read it, in place of its pages
# (the chooser says them): five columns do not fit the panel.
TEAM_HEADERS = ["Document", "Tags", "Owner", "Who can read"]
TEAM_WIDTHS = ["28%", "16%", "21%", "35%"]  # in a smaller type (ui.app.CSS: .team)
GONE = "That document has been deleted meanwhile (by someone else?); the list is up to date."
PRIVATE, EVERYONE = "private", "everyone"
SYNC_EVERY_S = 10  # the sync line is read again this often


@dataclass
class DocumentsPanel:
    table: gr.Dataframe
    choice: gr.Dropdown
    status: gr.Markdown
    handlers: Handlers
    changed: list  # the events after which the library has changed (for .then)
    opened_outputs: list  # what ``Handlers.opened`` fills when the tab opens

    @property
    def opened(self) -> Callable:
        """The handler for the tab's opening (wired by the shell once the session is known)."""
        return self.handlers.opened


class Handlers:
    """The panel's event handlers; each finds the caller's session from the request.
    ``sync_status``: the last folder sync, in one line (None: no folders are synced)."""

    def __init__(
        self, collections: Collections, sync_status: Callable[[], str] | None = None
    ) -> None:
        self.collections = collections
        self.sync_status = sync_status

    def listing(self, request: gr.Request, chosen: str | None = None):
        """The table and the chooser (``chosen`` kept chosen while it is there)."""
        documents = self.collections.session(request).pipeline.documents()
        choices = [(f"{d.name} ({d.pages} p.)", d.doc_id) for d in documents]
        kept = chosen if chosen in {d.doc_id for d in documents} else None
        shown = table(documents, team=self.collections.signed_in)
        return gr.update(value=shown), gr.update(choices=choices, value=kept)

    def opened(self, request: gr.Request):
        """The tab opened: the table, the chooser, whom an upload may be shown to (this
        person's choices), the sync line."""
        session = self.collections.session(request)
        visibility = gr.skip()
        if self.collections.signed_in:
            visibility = gr.update(choices=visibility_choices(session), value=PRIVATE)
        return *self.listing(request), visibility, self.sync_line()

    def sync_line(self) -> str:
        """The folders' last sync, as the panel shows it."""
        if self.sync_status is None:
            return ""
        line = self.sync_status() or "Not synced yet."
        return f"**Synced folders.** {escape_markdown(line)}"

    @gpu
    def index_files(
        self,
        files: list[str] | None,
        password: str,
        visibility: str | None,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        """Outputs: status, table; both after each file, so a batch shows its results as
        they come. ``visibility``: who may read them (``rag.access``; without a login,
        everyone). Each file's upload is removed once it is done."""
        if not files:
            gr.Warning("Choose one or more documents first.")
            yield gr.skip(), gr.skip()
            return
        try:
            yield from self._index(files, password, visibility, request, progress)
        finally:
            for file in files:  # indexed, refused, or never reached: its URL serves it no more
                discard_upload(Path(file))

    def _index(self, files: list[str], password: str, visibility, request, progress):
        pipeline = self.collections.session(request).pipeline
        shown = (visibility or PRIVATE) if self.collections.signed_in else EVERYONE
        rates: dict[str, PageRate] = {}

        def report(done: int, total: int, name: str) -> None:
            rate = rates.setdefault(name, PageRate())
            progress((done, total), desc=f"{name}: {rate.describe(done, total)}", unit="pages")

        lines = []
        for file in files:
            try:
                result = pipeline.add_file(
                    Path(file), progress=report, password=password or None, visibility=shown
                )
            except RagError as error:  # not the file's fault: a missing model, say
                lines.append(f"- {escape_markdown(Path(file).name)}: not added: {error}")
                gr.Warning(str(error))
                yield "\n".join(lines), self.listing(request)[0]
                return
            discard_upload(Path(file))
            lines.append(f"- {escape_markdown(result.message)}")
            yield "\n".join(lines), self.listing(request)[0]

    def choices(self, chosen: str | None, request: gr.Request):
        """The chooser's documents, read afresh whenever it is opened (another user may have
        added or deleted some)."""
        return self.listing(request, chosen)[1]

    def after_upload(self, chosen: str | None, request: gr.Request):
        """The drop zone emptied for the next batch; the chooser lists the new documents."""
        return None, self.listing(request, chosen)[1]

    def details(self, doc: str | None, request: gr.Request):
        """The chosen document's id, when it was added and its tags, under the chooser; and
        who may read it, a choice open to its owner and admins only, as are deleting it and
        changing its tags. Outputs: the details, the readers' choice, its button, the delete
        and tag buttons."""
        closed = gr.update(interactive=False), gr.update(interactive=False)
        as_before = gr.skip(), gr.skip()  # no document chosen: they say to choose one
        if not doc:
            return "", *closed, *as_before
        session = self.collections.session(request)
        try:
            document = session.pipeline.find(doc)
        except RagError:
            return "", *closed, *as_before
        team = self.collections.signed_in
        changes = as_before
        if team:
            changes = (gr.update(interactive=may_change(session.caller, document.owner)),) * 2
        return details_line(document, team), *self._readers(session, document), *changes

    def _readers(self, session: Session, document) -> tuple:
        """The readers' choice and its button for ``document``: its visibility chosen, open
        only to its owner and admins."""
        if not self.collections.signed_in:
            return gr.skip(), gr.skip()
        open_ = may_change(session.caller, document.owner)
        choices = visibility_choices(session, document.visibility)
        return (
            gr.update(choices=choices, value=document.visibility, interactive=open_),
            gr.update(interactive=open_),
        )

    def share_document(self, doc: str | None, visibility: str | None, request: gr.Request):
        """Who may read the chosen document, changed (its owner or an admin). Outputs: status,
        table, chooser, details, the readers' choice, its button."""
        if not doc or not visibility:
            gr.Warning("Choose a document, and who may read it.")
            return (gr.skip(),) * 6
        session = self.collections.session(request)
        try:
            document = session.pipeline.share(doc, visibility)
        except DocumentNotFoundError:
            gr.Warning(GONE)
            return gr.skip(), *self.listing(request), "", gr.skip(), gr.skip()
        except RagError as error:  # not theirs, or a group nobody is in: one line
            gr.Warning(str(error))
            return (gr.skip(),) * 6
        status = f"{escape_markdown(document.name)}: {escape_markdown(readers(document))}."
        return (
            status,
            *self.listing(request, document.doc_id),
            details_line(document, True),
            *self._readers(session, document),
        )

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
        except RagError as error:  # a bad tag, or another's document: the boxes keep it
            gr.Warning(str(error))
            return (gr.skip(),) * 6
        tags = ", ".join(document.tags) or "none"
        status = f"{escape_markdown(document.name)}: tags: {escape_markdown(tags)}."
        team = self.collections.signed_in
        return status, *self.listing(request, document.doc_id), details_line(document, team), "", ""

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
        except DocumentNotFoundError:  # deleted meanwhile, by another user
            gr.Warning(GONE)
            return gr.skip(), *self.listing(request), hidden
        except RagError as error:  # another's document: the engine's one line
            gr.Warning(str(error))
            return gr.skip(), *self.listing(request), hidden
        return f"Deleted {escape_markdown(document.name)}.", *self.listing(request), hidden


def table(documents, team: bool = False) -> pd.io.formats.style.Styler | None:
    """The documents as the table shows them: the names as they are (what /index returns),
    shown with line-break chances after ``_``, ``.`` and ``-`` (``breakable``); with
    ``team`` (a login), whose each is and who may read it instead of its pages."""
    if not documents:
        return None
    if team:
        rows = [[d.name, ", ".join(d.tags), d.owner or "—", readers(d)] for d in documents]
    else:
        rows = [[d.name, d.pages, ", ".join(d.tags)] for d in documents]
    headers = TEAM_HEADERS if team else HEADERS
    return pd.DataFrame(rows, columns=headers).style.format({"Document": breakable})


def readers(document) -> str:
    """Who may read ``document`` besides admins, as the table says it.

    >>> from types import SimpleNamespace as D
    >>> [readers(D(visibility=v)) for v in ("private", "everyone", "group:hr,group:it")]
    ['owner only', 'everyone', 'groups hr, it']
    """
    shown = parse_visibility(document.visibility)
    if shown.kind == "groups":
        return ("group " if len(shown.groups) == 1 else "groups ") + ", ".join(shown.groups)
    return "owner only" if shown.kind == PRIVATE else EVERYONE


def visibility_choices(session: Session, current: str = "") -> list[tuple[str, str]]:
    """Whom a document may be shown to, as this session's person may choose: only its owner,
    everyone, or one of their groups (an admin: any group there is); ``current`` (a document's
    visibility, maybe several groups) is among them."""
    caller: Caller = session.caller
    groups = session.pipeline.people.groups() if caller.admin else caller.groups
    choices = [("Only me (and admins)", PRIVATE), ("Everyone", EVERYONE)]
    choices += [(f"Group {group}", f"group:{group}") for group in sorted(groups)]
    if current and current not in {value for _, value in choices}:
        choices.append((readers(parse_visibility(current)), current))
    return choices


def discard_upload(path: Path) -> None:
    """Remove Gradio's temporary copy of an uploaded file (and its folder, once empty), so
    that no URL of it outlives its upload; a file outside Gradio's upload folder is left."""
    upload = Path(get_upload_folder()).resolve()
    try:
        resolved = path.resolve()
    except OSError:
        return
    if not resolved.is_relative_to(upload) or resolved == upload:
        return
    resolved.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        resolved.parent.rmdir()  # not empty: another upload's


def breakable(name: str) -> str:
    """``name`` as HTML that may wrap after its separators, never inside a word.

    >>> breakable("pdfjs__trace<x>.pdf")
    'pdfjs__<wbr>trace&lt;x&gt;.<wbr>pdf'
    """
    return re.sub(r"([_.\-]+)", r"\1<wbr>", html.escape(name))


def details_line(document, team: bool = False) -> str:
    """The chosen document: name, pages, when it was added, its whole id, its tags; with
    ``team``, whose it is and who may read it."""
    tags = ", ".join(document.tags) or "none"
    line = (
        f"**{escape_markdown(document.name)}** · {document.pages} p."
        f" · added {document.added[:10]} · id `{document.doc_id}` · tags: {escape_markdown(tags)}"
    )
    if team:
        owner = escape_markdown(document.owner or "—")
        line += f" · owner: {owner} · read by: {escape_markdown(readers(document))}"
    return line


def render(
    collections: Collections, sync_status: Callable[[], str] | None = None
) -> DocumentsPanel:
    handlers = Handlers(collections, sync_status)
    team = collections.signed_in

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
    # Behind a login, whom the next upload is shown to (this person's choices are filled in
    # when the tab opens; an API client may name any visibility, the engine checks it).
    # Without one, everything is everyone's, as before users.
    visibility = gr.Dropdown(
        label="Who can read what you add",
        choices=[("Only me (and admins)", PRIVATE), ("Everyone", EVERYONE)],
        value=PRIVATE if team else EVERYONE,
        allow_custom_value=True,
        visible=team,
        elem_id="upload-visibility",
    )
    files = gr.File(label="Add documents", file_count="multiple", elem_id="files", height=120)
    gr.Markdown(types_legend(), elem_id="types")
    if limits:
        gr.Markdown(limits, elem_id="limits")
    # Its label names the API's output (never "status": an id of Gradio's own translations,
    # which warns in the browser's console on every load).
    status = gr.Markdown(label="indexed", show_label=False, elem_id="index-status")
    table = gr.Dataframe(
        headers=TEAM_HEADERS if team else HEADERS,
        interactive=False,
        label="Documents",
        elem_id="documents",
        wrap=True,
        column_widths=TEAM_WIDTHS if team else WIDTHS,
        elem_classes=["team"] if team else None,
        # The names' display only is HTML: the data is plain.
        datatype=["html", "str", "str", "str"] if team else ["html", "number", "str"],
    )
    synced = gr.Markdown(visible=sync_status is not None, elem_id="sync-status")
    # Custom values let a document be named by id.
    choice = gr.Dropdown(
        label="Document (to tag or delete)",
        choices=[],
        elem_id="delete-choice",
        allow_custom_value=True,
    )
    chosen = gr.Markdown(elem_id="doc-details")
    # Open to the chosen document's owner and admins only (``Handlers.details``).
    with gr.Row(visible=team, equal_height=True):
        share_to = gr.Dropdown(
            label="Who can read the chosen document",
            choices=[],
            interactive=False,
            scale=3,
            elem_id="share-to",
        )
        share = gr.Button("Change", size="sm", scale=1, interactive=False, elem_id="share")
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
        [files, password, visibility],
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
    choice.change(handlers.details, choice, [chosen, share_to, share, delete, retag], **private)
    choice.focus(handlers.choices, choice, choice, **private)
    tagged = retag.click(
        handlers.tag_document,
        [choice, add_tags, remove_tags],
        [*listed, chosen, add_tags, remove_tags],
        **private,
    )
    shared = share.click(
        handlers.share_document,
        [choice, share_to],
        [*listed, chosen, share_to, share],
        **private,
    )
    if sync_status is not None:  # the folders' last sync: on every listing, and on a timer
        quiet = {"show_progress": "hidden", **private}
        table.change(handlers.sync_line, None, synced, **quiet)
        gr.Timer(SYNC_EVERY_S).tick(handlers.sync_line, None, synced, **quiet)
    return DocumentsPanel(
        table,
        choice,
        status,
        handlers,
        [uploaded, deleted, tagged, shared],
        [table, choice, visibility, synced],
    )


def split_tags(text: str) -> list[str]:
    """Tags typed in one box, separated by spaces or commas.

    >>> split_tags("finance, 2024  legal")
    ['finance', '2024', 'legal']
    """
    return [tag for tag in re.split(r"[\s,]+", text or "") if tag]
