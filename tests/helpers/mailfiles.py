"""E-mails for the tests, made here: ``.eml`` files by the standard library's ``EmailMessage``
(or written by hand where a hostile one must be exactly so), Outlook ``.msg`` files by
aspose-email-foss's writer (extract-msg, which the app reads them with, only reads).

Every message holds words no other file has, so a test can find its pages by them.
"""

from __future__ import annotations

import base64
import io
import zipfile
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

from PIL import Image, ImageDraw

SUBJECT = "Quarterly figures Zanzibarite"
BODY = "Please read the attached figures before Thursday, Quokkaline team."
SENDER = ("ada@example.com", "Ada Lovelace")
TO = ("grace@example.com", "Grace Hopper")
CC = ("alan@example.com", "Alan Turing")
DATE = datetime(2024, 12, 3, 10, 0, tzinfo=timezone.utc)


def eml(
    path: Path,
    attachments: dict[str, bytes] | None = None,
    subject: str = SUBJECT,
    body: str = BODY,
) -> Path:
    """A plain-text mail with ``attachments`` (name -> bytes), in the given order."""
    message = _headers(subject)
    message.set_content(body)
    for name, data in (attachments or {}).items():
        maintype, subtype = _type(name).split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    path.write_bytes(message.as_bytes())
    return path


def html_eml(path: Path, html: str, images: dict[str, bytes] | None = None) -> Path:
    """An HTML mail (with a plain alternative) whose HTML shows ``images`` (cid -> PNG) inline."""
    message = _headers(SUBJECT)
    message.set_content("The plain alternative, never shown.")
    message.add_alternative(html, subtype="html")
    shown = message.get_payload()[1]
    for cid, data in (images or {}).items():
        shown.add_related(data, maintype="image", subtype="png", cid=f"<{cid}>")
    path.write_bytes(message.as_bytes())
    return path


def png(text: str = "") -> bytes:
    """A small picture: a dark frame around ``text``."""
    image = Image.new("RGB", (320, 120), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((4, 4, 315, 115), outline=(20, 20, 20), width=6)
    draw.text((24, 50), text, fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def forwarded(path: Path, inner: Path, body: str = BODY) -> Path:
    """A mail carrying the mail ``inner`` as a ``message/rfc822`` part (a forward)."""
    from email import policy
    from email.parser import BytesParser

    message = _headers("Fwd: " + SUBJECT)
    message.set_content(body)
    message.add_attachment(BytesParser(policy=policy.default).parsebytes(inner.read_bytes()))
    path.write_bytes(message.as_bytes())
    return path


def outlook(
    path: Path,
    attachments: dict[str, bytes] | None = None,
    subject: str = SUBJECT,
    body: str = BODY,
    html: str | None = None,
    embedded: list | None = None,
) -> Path:
    """An Outlook message (``.msg``) with ``attachments`` (name -> bytes) and ``embedded``
    messages (made by ``outlook_message``)."""
    message = outlook_message(subject, body, html)
    for name, data in (attachments or {}).items():
        message.add_attachment(name, data, mime_type=_type(name))
    for inner in embedded or []:
        message.add_embedded_message_attachment(inner, filename=inner.subject + ".msg")
    message.save(path)
    return path


def outlook_message(subject: str = SUBJECT, body: str = BODY, html: str | None = None):
    from aspose.email_foss import msg

    message = msg.MapiMessage.create(subject, body)
    message.set_property(msg.PropertyId.SENDER_NAME, SENDER[1])
    message.set_property(msg.PropertyId.SENDER_EMAIL_ADDRESS, SENDER[0])
    message.set_property(msg.PropertyId.MESSAGE_DELIVERY_TIME, DATE)
    message.add_recipient(TO[0], display_name=TO[1])
    if html is not None:
        message.body_html = html
    return message


# -- hostile ----------------------------------------------------------------------------------


def many_attachments(path: Path, count: int = 1000) -> Path:
    """A mail of ``count`` tiny text attachments."""
    return eml(path, {f"note-{number}.txt": b"x" for number in range(count)})


def nested_bomb(path: Path, depth: int = 400) -> Path:
    """A mail forwarding a mail forwarding a mail ... ``depth`` deep, written by hand (the
    standard library's own writer recurses, and would fail on it)."""
    text = "Subject: the innermost\r\n\r\nbottom\r\n"
    for level in range(depth):
        boundary = f"level-{level}"
        text = (
            f"Subject: level {level}\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nlevel {level}\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n{text}\r\n--{boundary}--\r\n"
        )
    path.write_text(text, encoding="ascii")
    return path


def zip_named_msg(path: Path) -> Path:
    """A zip archive named ``.msg``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("message.txt", "not an Outlook message")
    return path


def ole_not_a_message(path: Path) -> Path:
    """An OLE compound file holding a Word stream, named ``.msg``."""
    from aspose.email_foss.cfb import CFBDocument, CFBStorage, CFBStream, CFBWriter

    root = CFBStorage("Root Entry", children=[CFBStream("WordDocument", b"\xec\xa5" * 300)])
    CFBWriter.write_file(CFBDocument(root), path)
    return path


def many_parts(path: Path, messages: int = 12, attachments: int = 45) -> Path:
    """A mail forwarding ``messages`` mails of ``attachments`` attachments each: under the
    limit per message, over it in all."""
    top = _headers("Many forwards")
    top.set_content("Forwards below.")
    for number in range(messages):
        inner = _headers(f"Forward {number}")
        inner.set_content("x")
        for count in range(attachments):
            inner.add_attachment(b"x", maintype="text", subtype="plain", filename=f"{count}.txt")
        top.add_attachment(inner)
    path.write_bytes(top.as_bytes())
    return path


def remote_resources(path: Path, url: str) -> Path:
    """An HTML mail naming an image, a style sheet and a background on ``url``."""
    html = (
        f'<html><head><link rel="stylesheet" href="{url}/style.css"></head>'
        f'<body style="background: url({url}/background.png)">'
        f'<p>Tracking pixel below, Pixelwatcher.</p><img src="{url}/pixel.png"></body></html>'
    )
    return html_eml(path, html)


# Words in each encoding, and what each is called: every one is in a header or a body.
ENCODED_WORDS = {
    "latin-1": "Zéphyrine",
    "utf-16": "Ultravioletta",
    "iso-2022-jp": "東京会議",
    "rfc2047": "Ångströmsson",
}


def encodings(path: Path) -> Path:
    """A mail whose headers are RFC 2047 encoded words in UTF-16, Latin-1 and ISO-2022-JP and
    raw 8-bit Latin-1, with a body in each of UTF-16, Latin-1 and ISO-2022-JP, and one in a
    charset nobody knows."""
    words = ENCODED_WORDS

    def encoded(text: str, charset: str) -> str:
        return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode()}?="

    boundary = "mixed-charsets"
    parts = [
        ("utf-16", f"Sixteen-bit body: {words['utf-16']} bodyword Hexadecagon."),
        ("iso-8859-1", f"Latin body: {words['latin-1']} Crème brûlée, Moussakaville."),
        ("iso-2022-jp", f"Japanese body: {words['iso-2022-jp']} Nihonbashiro."),
        ("x-nobody-knows", "Unknown charset body: Mysterion."),
    ]
    head = (
        f"From: {encoded('Renée ' + words['rfc2047'], 'iso-8859-1')} <renee@example.com>\r\n"
        f"To: Gr\xe9goire <gregoire@example.com>\r\n"
        f"Subject: {encoded(words['utf-16'] + ' subject', 'utf-16')} and "
        f"{encoded(words['iso-2022-jp'], 'iso-2022-jp')}\r\n"
        f"Date: Tue, 03 Dec 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    ).encode("latin-1")
    body = b""
    for charset, text in parts:
        encoding = charset if charset != "x-nobody-knows" else "utf-8"
        data = base64.encodebytes(text.encode(encoding)).replace(b"\n", b"\r\n")
        body += (
            f"--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode() + data
    path.write_bytes(head + body + f"--{boundary}--\r\n".encode())
    return path


def utf16_file(path: Path) -> Path:
    """A whole ``.eml`` file saved in UTF-16 (with its byte-order mark)."""
    text = eml(path, body="Saved by a Windows tool, Sixteenfold.").read_text(encoding="ascii")
    path.write_bytes(text.encode("utf-16"))
    return path


def _headers(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"{SENDER[1]} <{SENDER[0]}>"
    message["To"] = f"{TO[1]} <{TO[0]}>"
    message["Cc"] = f"{CC[1]} <{CC[0]}>"
    message["Date"] = DATE
    message["Subject"] = subject
    return message


def _type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"
