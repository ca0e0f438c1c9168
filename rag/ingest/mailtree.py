"""An e-mail read into a tree of messages and attachments, in a child process under the file's
time budget and memory cap (``rag.ingest.sandbox``), so that a MIME bomb costs the child and
never the app.

``.eml`` files are parsed by the standard library's ``email`` package (``policy.default``: RFC
2047 encoded words decoded), Outlook ``.msg`` files by extract-msg. Each message keeps its
headers (from, to, cc, bcc, date, subject), its body as HTML (a plain body escaped into
``<pre class=source>``), the inline images its HTML names by ``cid:``, and its attachments. An
attached message (``message/rfc822``, an Outlook embedded message, an attached ``.eml`` or
``.msg`` file) is read as a message of its own. Text in any charset is decoded without failing:
the declared charset, else UTF-8, else a guess (charset-normalizer), else replacement
characters; an ``.eml`` saved in UTF-16 is read too.

What the child keeps (attachments, inline images, bodies) it writes as files of its work folder,
with the tree as ``tree.json``. A message over a limit is refused in one line naming it:
more than ``MAX_ATTACHMENTS`` attachments in one message, ``MAX_PARTS`` MIME parts in all, or
messages nested more than ``MAX_NESTING`` deep. An attachment that cannot be read is kept in the
tree with the reason it is left out.
"""

from __future__ import annotations

import html
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import ConversionError
from rag.ingest import sandbox
from rag.ingest.formats import content_matches, describe, kind, suffix
from rag.ingest.names import display_name

MAX_ATTACHMENTS = 50  # in one message: a mail of hundreds is an archive, not a message
MAX_PARTS = 500  # MIME parts (or Outlook attachments) in all, nested messages included
MAX_NESTING = 5  # messages within messages (a forward of a forward ...)
MAX_PART_DEPTH = 20  # multiparts within multiparts, in one message
TREE = "tree.json"
HEADERS = ("From", "To", "Cc", "Bcc", "Date", "Subject")
_CID = re.compile(r"""cid:([^\s"'<>)]+)""", re.IGNORECASE)
_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


@dataclass
class Attachment:
    """One attachment: a file of the work folder, an attached message, or only the reason it
    is left out. ``pdf``, ``pages`` and ``start`` are filled in by ``rag.ingest.mail``."""

    name: str
    file: str | None = None
    message: Message | None = None
    left_out: str | None = None
    pdf: Path | None = None
    pages: int = 0
    start: int | None = None  # its first page in the document; None: not in it


@dataclass
class Message:
    """One message: its headers (label, value) in display order, its body (a file of the work
    folder holding HTML; None: no body), its inline images (``cid`` -> file) and attachments.
    ``pdf``, ``pages`` and ``start`` are filled in by ``rag.ingest.mail``."""

    headers: list[tuple[str, str]]
    body: str | None = None
    inline: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    pdf: Path | None = None
    pages: int = 1
    start: int = 1

    def to_json(self) -> dict:
        attachments = [
            {
                "name": a.name,
                "file": a.file,
                "left_out": a.left_out,
                "message": a.message.to_json() if a.message else None,
            }
            for a in self.attachments
        ]
        return {
            "headers": self.headers,
            "body": self.body,
            "inline": self.inline,
            "attachments": attachments,
        }

    @classmethod
    def from_json(cls, data: dict) -> Message:
        attachments = [
            Attachment(
                a["name"],
                a["file"],
                cls.from_json(a["message"]) if a["message"] else None,
                a["left_out"],
            )
            for a in data["attachments"]
        ]
        headers = [(label, value) for label, value in data["headers"]]
        return cls(headers, data["body"], dict(data["inline"]), attachments)


def read(path: Path, name: str, work: Path, budget: sandbox.Budget) -> Message:
    """The e-mail ``path`` (shown as ``name``) read into ``work`` by a child process; raises a
    PdfError (one line) when it cannot be read or is over a limit."""
    work.mkdir(parents=True, exist_ok=True)
    arguments = [suffix(name), sandbox.absolute(path), sandbox.absolute(work)]
    result = sandbox.run_python(__name__, arguments, budget, name, "reading the message")
    if result.returncode != 0 or not (work / TREE).is_file():
        said = sandbox.last_line(result.stderr) or "?"
        raise ConversionError(f"{name}: not {describe(name)} that can be read ({said})")
    return Message.from_json(json.loads((work / TREE).read_text(encoding="utf-8")))


# -- in the child ---------------------------------------------------------------------------


class Refused(Exception):
    """A message the child will not read; its message is the reason, for people."""


class OverLimit(Refused):
    pass


def main(argv: list[str]) -> int:
    import logging

    logging.disable(logging.CRITICAL)  # extract-msg logs what it tolerates
    ending, source, work = argv[0], Path(argv[1]), Path(argv[2])
    reader = Reader(work)
    try:
        message = reader.eml(source.read_bytes(), 0) if ending == ".eml" else reader.msg(source, 0)
    except OverLimit as refusal:
        print(refusal, file=sys.stderr)
        return sandbox.OVER_LIMIT
    except RecursionError:
        print(
            f"its parts are nested too deeply to read (the limits: messages {MAX_NESTING} deep, "
            f"MIME parts {MAX_PART_DEPTH} deep)",
            file=sys.stderr,
        )
        return sandbox.OVER_LIMIT
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        return sandbox.REFUSED
    (work / TREE).write_text(json.dumps(message.to_json()), encoding="utf-8")
    return 0


class Reader:
    """Reads messages into ``work``, counting their parts against the limits."""

    def __init__(self, work: Path) -> None:
        self.work, self.parts, self.files = work, 0, 0

    def keep(self, data: bytes, ending: str = "") -> str:
        """``data`` as a new file of the work folder; its name there."""
        self.files += 1
        name = f"part-{self.files}{ending}"
        (self.work / name).write_bytes(data)
        return name

    def counted(self, attachments: int, parts: int) -> None:
        if attachments > MAX_ATTACHMENTS:
            raise OverLimit(
                f"one message holds {attachments:,} attachments, over the "
                f"{MAX_ATTACHMENTS}-attachment limit"
            )
        self.parts += parts
        if self.parts > MAX_PARTS:
            raise OverLimit(f"over {MAX_PARTS:,} MIME parts, the limit for one e-mail")

    # -- .eml ------------------------------------------------------------------------------

    def eml(self, data: bytes, depth: int) -> Message:
        from email import policy
        from email.parser import BytesParser

        parsed = BytesParser(policy=policy.default).parsebytes(as_utf8(data))
        return self.eml_message(parsed, depth)

    def eml_message(self, parsed, depth: int) -> Message:
        _check_depth(depth)
        bodies, files = [], []
        visited = collect(parsed, bodies, files, 0)
        texts = [(part.get_content_type() == "text/html", text_of(part)) for part in bodies]
        named = {cid for is_html, text in texts if is_html for cid in _CID.findall(text)}
        inline, attached = self.inline_parts(files, named)
        self.counted(len(attached), visited)
        message = Message(eml_headers(parsed), self.body(texts), inline)
        for number, part in enumerate(attached, 1):
            message.attachments.append(self.eml_attachment(part, number, depth))
        return message

    def inline_parts(self, files: list, named: set[str]) -> tuple[dict[str, str], list]:
        """The parts the HTML shows by ``cid:`` (kept as files), and the attachments."""
        from urllib.parse import unquote

        by_id = {unquote(cid).strip("<>"): cid for cid in named}
        inline, attached = {}, []
        for part in files:
            cid = _safe(lambda part=part: str(part.get("Content-ID", "")).strip().strip("<>"))
            if cid and cid in by_id and not part.is_multipart():
                inline[by_id[cid]] = self.keep(part.get_payload(decode=True) or b"")
            else:
                attached.append(part)
        return inline, attached

    def eml_attachment(self, part, number: int, depth: int) -> Attachment:
        kind_of = part.get_content_type()
        if kind_of in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload()[0]
            name = attachment_name(part, number, fallback=_subject_name(inner))
            return Attachment(name, message=self.eml_message(inner, depth + 1))
        name = attachment_name(part, number)
        if part.is_multipart():  # message/delivery-status, message/partial ...
            return Attachment(name, left_out="not a type this app reads")
        return self.file(name, part.get_payload(decode=True) or b"", depth)

    def file(self, name: str, data: bytes, depth: int) -> Attachment:
        """An attached file; an e-mail among them read as a message of its own."""
        file = self.keep(data, suffix(name))
        if kind(name) != "email":
            return Attachment(name, file)
        path = self.work / file
        if not content_matches(path, suffix(name)):
            return Attachment(name, left_out=f"named as {describe(name)}, but it is not one")
        read = self.eml if suffix(name) == ".eml" else lambda _, depth: self.msg(path, depth)
        try:
            inner = read(data, depth + 1)
        except OverLimit:
            raise
        except Refused as refusal:
            return Attachment(name, left_out=str(refusal))
        return Attachment(name, message=inner)

    def body(self, texts: list[tuple[bool, str]]) -> str | None:
        """The bodies, in order, as one HTML file of the work folder."""
        pieces = [text if is_html else _pre(text) for is_html, text in texts if text.strip()]
        if not pieces:
            return None
        return self.keep("\n".join(pieces).encode("utf-8"), ".html")

    # -- .msg ------------------------------------------------------------------------------

    def msg(self, path: Path, depth: int) -> Message:
        import extract_msg

        try:
            opened = extract_msg.openMsg(str(path), strict=False, errorBehavior=_tolerant())
        except Exception as error:  # extract-msg raises many kinds for a damaged file
            raise Refused(f"not an Outlook message that can be read ({_said(error)})") from None
        try:
            if not _safe(lambda: opened.classType):  # a Word or Excel file, renamed
                raise Refused("an OLE compound file, but not an Outlook message")
            return self.msg_message(opened, depth)
        finally:
            opened.close()

    def msg_message(self, opened, depth: int) -> Message:
        _check_depth(depth)
        attachments = list(_safe(lambda: opened.attachments) or [])
        self.counted(len(attachments), len(attachments) + 1)
        page = _safe(lambda: opened.htmlBody)
        text = _safe(lambda: opened.body) or ""
        texts = [(True, decode_html(page))] if page else [(False, text)]
        named = set(_CID.findall(texts[0][1])) if page else set()
        message = Message(msg_headers(opened), self.body(texts))
        for number, attachment in enumerate(attachments, 1):
            cid = (_safe(lambda a=attachment: a.cid or a.contentId) or "").strip("<>")
            data = _safe(lambda a=attachment: a.data)
            if cid and cid in named and isinstance(data, bytes):
                message.inline[cid] = self.keep(data)
                continue
            message.attachments.append(self.msg_attachment(attachment, number, depth))
        return message

    def msg_attachment(self, attachment, number: int, depth: int) -> Attachment:
        from extract_msg.enums import AttachmentType

        names = ("longFilename", "shortFilename", "displayName", "name")
        raw = next((n for n in (_safe(lambda k=k: getattr(attachment, k)) for k in names) if n), "")
        kind_of = _safe(lambda: attachment.type)
        data = _safe(lambda: attachment.data)
        if kind_of == AttachmentType.MSG and data is not None:
            name = display_name(str(raw)) if raw else _subject_name_msg(data)
            try:
                return Attachment(name, message=self.msg_message(data, depth + 1))
            except OverLimit:
                raise
            except Refused as refusal:
                return Attachment(name, left_out=str(refusal))
        name = display_name(str(raw)) if raw else f"attachment {number}"
        if kind_of != AttachmentType.DATA or not isinstance(data, bytes):
            return Attachment(name, left_out="an Outlook attachment of a kind this app cannot read")
        return self.file(name, data, depth)


def _check_depth(depth: int) -> None:
    if depth > MAX_NESTING:
        raise OverLimit(f"messages nested more than {MAX_NESTING} deep (forwards of forwards)")


def collect(part, bodies: list, files: list, depth: int) -> int:
    """Sort the parts under ``part`` into the bodies shown and the other files (attached
    messages are files), taking the best of each ``multipart/alternative``; how many parts."""
    if depth > MAX_PART_DEPTH:
        raise OverLimit(f"MIME parts nested more than {MAX_PART_DEPTH} deep")
    kind_of = part.get_content_type()
    if part.get_content_maintype() == "message":
        files.append(part)
        return 1
    if part.is_multipart():
        inner = list(part.iter_parts())
        if kind_of == "multipart/alternative":
            inner = best_alternative(inner)
        return 1 + sum(collect(sub, bodies, files, depth + 1) for sub in inner)
    if kind_of in ("text/plain", "text/html") and not _attached(part):
        bodies.append(part)
    else:
        files.append(part)
    return 1


def best_alternative(parts: list) -> list:
    """The one alternative shown: HTML where there is one (alone, or with its images), else
    plain text, else the last (the most faithful, by RFC 2046)."""
    for wanted in ("text/html", "multipart/related", "multipart/mixed", "text/plain"):
        found = [part for part in parts if part.get_content_type() == wanted]
        if found:
            return found[-1:]
    return parts[-1:]


def _attached(part) -> bool:
    return part.get_content_disposition() == "attachment" or bool(_safe(part.get_filename))


def attachment_name(part, number: int, fallback: str = "") -> str:
    """An attachment's name as shown: its own, else one made from its type."""
    import mimetypes

    raw = _safe(part.get_filename)
    if raw:
        return display_name(clean(str(raw)))
    if fallback:
        return fallback
    ending = mimetypes.guess_extension(part.get_content_type()) or ""
    return f"attachment {number}{ending}"


def _subject_name(parsed) -> str:
    subject = _safe(lambda: str(parsed.get("Subject", "")))
    return display_name(clean(subject or "message").replace("/", "-") + ".eml")


def _subject_name_msg(opened) -> str:
    subject = _safe(lambda: opened.subject) or "message"
    return display_name(str(subject).replace("/", "-") + ".msg")


def eml_headers(parsed) -> list[tuple[str, str]]:
    """The headers shown, decoded; a raw 8-bit header in UTF-8, else Windows-1252."""
    raw = {}
    for key, value in parsed.raw_items():
        raw.setdefault(key.lower(), []).append(value)
    found = []
    for label in HEADERS:
        values = [header_value(parsed, label, index, value) for index, value in
                  enumerate(raw.get(label.lower(), []))]  # fmt: skip
        values = [value for value in values if value]
        if values or label == "Subject":
            found.append((label, ", ".join(values) or "(no subject)"))
    return found


def header_value(parsed, label: str, index: int, raw: str) -> str:
    """One header's value: from the raw bytes when they are 8-bit (the parser would show
    replacement characters), else as ``policy.default`` decodes it (RFC 2047)."""
    if any("\udc80" <= c <= "\udcff" for c in raw):
        text = decode(raw.encode("utf-8", "surrogateescape"), None, guess=False)
        return _unfold(_decoded_words(text))
    value = _safe(lambda: str(parsed.get_all(label)[index]))
    return _unfold(clean(value if value is not None else _decoded_words(raw)))


def _decoded_words(text: str) -> str:
    from email.header import decode_header, make_header

    return _safe(lambda: str(make_header(decode_header(text)))) or text


def _unfold(text: str) -> str:
    return " ".join(text.split())


def msg_headers(opened) -> list[tuple[str, str]]:
    import email.utils

    date = _safe(lambda: opened.date)
    if hasattr(date, "strftime"):
        date = _safe(lambda: email.utils.format_datetime(date)) or str(date)
    sender = _safe(lambda: opened.sender)
    address = _safe(lambda: opened.getStringStream("__substg1.0_0C1F"))  # PidTagSenderEmailAddress
    if sender and address and "@" in address and "@" not in sender:
        sender = f"{sender} <{address}>"
    values = {
        "From": sender,
        "To": _safe(lambda: opened.to),
        "Cc": _safe(lambda: opened.cc),
        "Bcc": _safe(lambda: opened.bcc),
        "Date": date,
        "Subject": _safe(lambda: opened.subject) or "(no subject)",
    }
    return [(label, _unfold(clean(str(value)))) for label, value in values.items() if value]


def text_of(part) -> str:
    """A text part's content in its declared charset, or as well as can be guessed."""
    data = part.get_payload(decode=True) or b""
    return decode(data, _safe(part.get_content_charset))


def decode_html(data: bytes | str) -> str:
    """An HTML body in the charset its ``<meta>`` names, or as well as can be guessed."""
    if isinstance(data, str):
        return clean(data)
    found = _CHARSET.search(data[:4096])
    return decode(data, found.group(1).decode("ascii") if found else None)


def decode(data: bytes, charset: str | None, guess: bool = True) -> str:
    """``data`` as text: in ``charset`` if it reads so, else UTF-8, else a guess
    (charset-normalizer; Windows-1252 when ``guess`` is off), never failing.

    >>> decode("café".encode("latin-1"), "iso-8859-1"), decode(b"caf\\xc3\\xa9", "x-unknown")
    ('café', 'café')
    >>> decode(b"caf\\xe9", None, guess=False)
    'café'
    """
    for encoding in (charset, "utf-8"):
        if encoding:
            try:
                return clean(data.decode(encoding))
            except (LookupError, UnicodeError, ValueError):
                pass
    if guess:
        import charset_normalizer

        best = charset_normalizer.from_bytes(data[: 1 << 20]).best()
        if best is not None and best.encoding:
            return clean(data.decode(best.encoding, errors="replace"))
    return clean(data.decode("cp1252", errors="replace"))


def clean(text: str) -> str:
    """``text`` without lone surrogates and NUL characters (neither can be written)."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def as_utf8(data: bytes) -> bytes:
    """An ``.eml`` file's bytes, re-encoded from UTF-16 (some Windows tools save so)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace").encode("utf-8")
    sample = data[:512]
    for zeros, encoding in ((sample[1::2], "utf-16-le"), (sample[0::2], "utf-16-be")):
        if len(zeros) >= 8 and zeros.count(0) >= 0.9 * len(zeros):
            return data.decode(encoding, errors="replace").encode("utf-8")
    return data.removeprefix(b"\xef\xbb\xbf")


def _pre(text: str) -> str:
    return f'<pre class="source">{html.escape(text)}</pre>'


def _said(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:200]


def _safe(read):
    """``read()``, or None when the library fails on a damaged part (a hostile message must
    not stop the others from being read)."""
    try:
        return read()
    except RecursionError:
        raise
    except Exception:
        return None


def _tolerant():
    from extract_msg.enums import ErrorBehavior

    return (
        ErrorBehavior.ATTACH_NOT_IMPLEMENTED
        | ErrorBehavior.ATTACH_BROKEN
        | ErrorBehavior.RTFDE_MALFORMED
        | ErrorBehavior.RTFDE_UNKNOWN_ERROR
        | ErrorBehavior.STANDARDS_VIOLATION
        | ErrorBehavior.OLE_DEFECT_INCORRECT
        | ErrorBehavior.NAMED_NAME_STREAM
    )
