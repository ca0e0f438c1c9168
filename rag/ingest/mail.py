"""E-mails (``.eml``, Outlook ``.msg``) -> one PDF: the message as a page, then its attachments.

Decision (issue 28): an e-mail is one document. Its attachments of a type the app reads are
indexed as part of it, after the message's pages, in the order the message holds them, and the
message page lists each attachment with the page where it begins (``report.pdf — from page 3``)
or why it was left out (``setup.exe — not a type this app reads``). So a citation of an
attachment's page names the mail (``[mail.eml p.4]``), and deleting the mail deletes its
attachments. An attached message (a forward: ``message/rfc822``, an Outlook embedded message,
an attached ``.eml`` or ``.msg``) is a message page of its own, followed by its own attachments.

How: the mail is read by a child process (``rag.ingest.mailtree``: its limits refuse a MIME
bomb in one line). Each attachment is converted as the file it is (``convert``: the same
converters, checks and limits as an upload; a PDF is checked by poppler and copied by
``pdfunite``, an encrypted one that opens without a password redrawn by ``pdftocairo``); one
that fails is left out, with its reason on the message page and in the notes, and the rest of
the mail is indexed. Each attachment may spend at most half the time the file has left, so the
message itself is always drawn. The message page is HTML drawn by WeasyPrint
(``rag.ingest.webpage``): headers on top, then the HTML body as it is, with its inline ``cid:``
images and nothing fetched from anywhere, or the plain body. It is drawn again when its own
page count moves the attachments' first pages. poppler's ``pdfunite`` puts the pages together.

Limits: those of ``rag.ingest.mailtree`` (attachments per message, MIME parts, nesting), each
attachment those of any file (``max_file_mb``, its own type's), and the whole mail
``max_pages``: an attachment that would take it over is left out.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path

from rag.config import Settings
from rag.errors import (
    ConversionError,
    CorruptPdfError,
    PdfError,
    PdfLimitError,
    UnsupportedFileError,
    without_paths,
)
from rag.ingest import mailtree, sandbox, webpage
from rag.ingest.formats import content_matches, kind, mismatch, suffix
from rag.ingest.mailtree import Attachment, Message
from rag.ingest.pdf import check_size, inspect_pdf

# convert(source, target, name, budget, settings) -> notes: an image, office or text file
# checked and written as the PDF target (rag.ingest.convert.convert_file).
Converter = Callable[[Path, Path, str, sandbox.Budget, Settings], tuple[str, ...]]
DRAWS = 3  # times a message page is drawn at most, until its page count holds still
NOTED = 5  # attachments left out named in the notes; the message page lists them all
STYLE = """
table.mail-headers { width: 100%; margin: 0 0 12pt; }
table.mail-headers th { width: 18%; white-space: nowrap; }
pre.source { font-family: "DejaVu Sans", "Liberation Sans", sans-serif; font-size: 10pt; }
"""


def check(path: Path, name: str, settings: Settings) -> None:
    """Refuse, before reading it, a mail whose content is not what its name says (an ``.msg``
    must be an OLE compound file, an ``.eml`` text)."""
    if not content_matches(path, suffix(name)):
        raise UnsupportedFileError(mismatch(name, path))


def to_pdf(
    path: Path,
    target: Path,
    name: str,
    budget: sandbox.Budget,
    settings: Settings,
    *,
    convert: Converter,
) -> tuple[str, ...]:
    """Write the mail ``path`` (shown as ``name``) as the PDF ``target``: its message pages and
    attachments, within ``budget``; ``convert`` converts an attachment. Returns the notes for
    the user (attachments left out, remote images not loaded); raises a PdfError (one line)
    when the mail itself is refused."""
    with tempfile.TemporaryDirectory(prefix="mail-") as scratch:
        work = Path(scratch)
        top = mailtree.read(path, name, work / "parts", budget)
        notes: list[str] = []
        for attachment in files(top):
            notes += prepare(attachment, work, budget, settings, convert)
        not_loaded = draw(top, work, name, budget, settings)
        merge(list(pdfs(top)), target, name, budget)
    left = left_out_notes(top, settings.max_pages)
    return (*notes, *left, *webpage.not_loaded_note(not_loaded))


def files(message: Message) -> Iterator[Attachment]:
    """Every attached file of ``message`` and the messages in it, in document order."""
    for attachment in message.attachments:
        if attachment.message:
            yield from files(attachment.message)
        elif attachment.left_out is None:
            yield attachment


def messages(message: Message) -> Iterator[Message]:
    yield message
    for attachment in message.attachments:
        if attachment.message:
            yield from messages(attachment.message)


def prepare(
    attachment: Attachment,
    work: Path,
    budget: sandbox.Budget,
    settings: Settings,
    convert: Converter,
) -> list[str]:
    """Make ``attachment`` a PDF (``attachment.pdf``, ``.pages``), or say why it is left out
    (``attachment.left_out``); the notes its conversion gave."""
    name, family = attachment.name, kind(attachment.name)
    if family in ("unknown", "email"):  # an e-mail was read as a message, if it could be
        attachment.left_out = "not a type this app reads"
        return []
    source = work / "parts" / attachment.file
    share = sandbox.Budget.start(
        math.floor(max(budget.left(), 0) / 2), budget.memory_mb, budget.page_seconds
    )
    notes: tuple[str, ...] = ()
    try:
        check_size(source, settings, name)
        pdf = source
        if family != "pdf":
            pdf = source.with_name(source.name + ".pdf")
            notes = convert(source, pdf, name, share, settings)
        info = inspect_pdf(pdf, settings, name=name, budget=share)
        attachment.pdf = mergeable(pdf, name, share) if family == "pdf" else pdf
        attachment.pages = info.pages
    except PdfError as error:
        attachment.left_out = reason(error, name)
        return []
    return [f"{name}: {note}" for note in notes]


def mergeable(pdf: Path, name: str, budget: sandbox.Budget) -> Path:
    """An attached PDF as poppler writes it, so that ``pdfunite`` can merge it: copied by
    ``pdfunite`` itself, or, encrypted (it opened without a password, but pdfunite merges no
    encrypted file), redrawn by ``pdftocairo``."""
    copy = pdf.with_name(pdf.name + ".copy.pdf")
    result = run("pdfunite", [sandbox.absolute(pdf), sandbox.absolute(copy)], budget, name)
    if result.returncode != 0 and "encrypted" in result.stderr.lower():
        arguments = ["-pdf", sandbox.absolute(pdf), sandbox.absolute(copy)]
        result = run("pdftocairo", arguments, budget, name)
    if result.returncode != 0 or not copy.is_file():
        raise CorruptPdfError(f"{name}: the PDF could not be copied{_poppler(result.stderr)}")
    return copy


def draw(top: Message, work: Path, name: str, budget: sandbox.Budget, settings: Settings) -> int:
    """Draw every message page with its attachments' first pages, again while a message's
    page count moves them; how many remote or local resources were not loaded."""
    every = list(messages(top))
    not_loaded = 0
    for _ in range(DRAWS):
        place(top, 1, settings.max_pages)
        moved, not_loaded = False, 0
        for number, message in enumerate(every):
            message.pdf = work / f"message-{number}.pdf"
            parts = {cid: work / "parts" / file for cid, file in message.inline.items()}
            shown = page(message, work / "parts", settings.max_pages)
            not_loaded += webpage.to_pdf(
                shown, message.pdf, name, budget, settings.max_pages, parts=parts, style=STYLE
            )
            pages = inspect_pdf(message.pdf, settings, name=name, budget=budget).pages
            moved |= pages != message.pages
            message.pages = pages
        if not moved:
            break
    return not_loaded


def place(message: Message, first: int, max_pages: int) -> int:
    """Number the pages from ``first``: the message's, then each attachment's; one that would
    end past ``max_pages`` is not placed. Returns the page after them."""
    message.start, page = first, first + message.pages
    for attachment in message.attachments:
        if attachment.message:
            page = place(attachment.message, page, max_pages)
            attachment.start = attachment.message.start
        elif attachment.pdf is not None:
            fits = page + attachment.pages - 1 <= max_pages
            attachment.start = page if fits else None
            page += attachment.pages if fits else 0
    return page


def page(message: Message, folder: Path, max_pages: int) -> str:
    """The message page as HTML: the headers and the attachments in a table, then the body."""
    rows = [(label, escape(value)) for label, value in message.headers]
    if message.attachments:
        listed = "<br>".join(escape(listing(a, max_pages)) for a in message.attachments)
        rows.append(("Attachments", listed))
    table = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    body = (folder / message.body).read_text(encoding="utf-8") if message.body else ""
    return f'<!DOCTYPE html>\n<table class="mail-headers">{table}</table>\n{body}'


def listing(attachment: Attachment, max_pages: int) -> str:
    """``report.pdf — from page 3`` or ``setup.exe — not a type this app reads``."""
    if attachment.start is not None:
        return f"{attachment.name} — from page {attachment.start}"
    return f"{attachment.name} — {why_left_out(attachment, max_pages)}"


def why_left_out(attachment: Attachment, max_pages: int) -> str:
    if attachment.left_out:
        return without_paths(attachment.left_out)
    return f"its {attachment.pages:,} pages would take the mail over the {max_pages}-page limit"


def left_out(message: Message) -> Iterator[Attachment]:
    for attachment in message.attachments:
        if attachment.message:
            yield from left_out(attachment.message)
        elif attachment.start is None:
            yield attachment


def left_out_notes(top: Message, max_pages: int) -> list[str]:
    """``setup.exe left out: not a type this app reads``, for the first few."""
    missing = list(left_out(top))
    notes = [f"{a.name} left out: {why_left_out(a, max_pages)}" for a in missing[:NOTED]]
    if len(missing) > NOTED:
        more = len(missing) - NOTED
        notes.append(f"{more} more attachments left out (the message page lists them)")
    return notes


def pdfs(message: Message) -> Iterator[Path]:
    """The PDFs to merge, in document order."""
    yield message.pdf
    for attachment in message.attachments:
        if attachment.message:
            yield from pdfs(attachment.message)
        elif attachment.start is not None:
            yield attachment.pdf


def merge(parts: list[Path], target: Path, name: str, budget: sandbox.Budget) -> None:
    if len(parts) == 1:
        shutil.copyfile(parts[0], target)
        return
    arguments = [*map(sandbox.absolute, parts), sandbox.absolute(target)]
    result = run("pdfunite", arguments, budget, name)
    if result.returncode != 0:
        said = _poppler(result.stderr)
        raise ConversionError(f"{name}: its pages could not be put together{said}")


def run(tool: str, arguments: list[str], budget: sandbox.Budget, name: str) -> sandbox.Result:
    try:
        return sandbox.run(tool, arguments, budget)
    except sandbox.OverTime:
        raise PdfLimitError(
            f"{name}: putting its pages together took longer than the {budget.seconds:g} s "
            "allowed per file (RAG_RENDER_TIMEOUT_S)"
        ) from None


def reason(error: PdfError, name: str) -> str:
    """Why an attachment was left out: its refusal without its name."""
    return without_paths(str(error)).removeprefix(f"{name}: ")


def _poppler(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return f" (poppler: {without_paths(lines[-1])[:120]})" if lines else ""
