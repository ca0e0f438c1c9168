"""E-mails in: an ``.eml`` or Outlook ``.msg`` is one document, its message page first (headers,
body, a list of the attachments with the page each begins on), then each attachment the app
reads, found by its words and cited as a page of the mail; hostile mails are refused in one
line naming the limit, and an attachment that fails is left out with a note.

The mails are made by ``tests.helpers.mailfiles``; the .docx attachments by LibreOffice's
counterpart ``tests.helpers.officefiles`` (``office`` tests convert them with LibreOffice).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.errors import ConversionError, PdfTooLargeError, UnsupportedFileError
from rag.ingest import mail, mailtree, sandbox
from rag.ingest.convert import CACHE
from rag.ingest.mailtree import Attachment, Message
from rag.pipeline import Pipeline
from tests.helpers import SAMPLES, mailfiles, officefiles, pdfs
from tests.helpers.web import recording_server

REPORT = (SAMPLES / "annual_report.pdf").read_bytes()  # 3 pages: Gdansk on 1, Controllers on 3
EXPENSES = (SAMPLES / "expense_form.pdf").read_bytes()  # 1 page: Ribeiro


@pytest.fixture
def pipeline(indexing_settings) -> Pipeline:
    """An empty pipeline that searches words."""
    return Pipeline(dataclasses.replace(indexing_settings, hybrid="text"))


def found_on(pipeline: Pipeline, word: str, doc_id: str) -> str:
    """The citation of the page ``word`` is found on first."""
    return pipeline.search(word, docs=[doc_id])[0].citation


def page_text(pipeline: Pipeline, doc_id: str, number: int = 1) -> str:
    return pipeline.index.page_words(doc_id, number).text


def memo(folder: Path) -> bytes:
    """A two-page .docx: INV-7731 on its first page, PN-88-A on its second."""
    return officefiles.docx(folder / "memo.docx").read_bytes()


@pytest.mark.office
def test_a_mail_is_its_message_page_then_its_attachments(pipeline, tmp_path):
    attachments = {"report.pdf": REPORT, "memo.docx": memo(tmp_path), "setup.exe": b"MZ\x90\x00"}
    result = pipeline.add_file(mailfiles.eml(tmp_path / "mail.eml", attachments))
    assert result.status == "indexed", result.message
    assert result.pages == 1 + 3 + 2
    assert result.warnings == ("setup.exe left out: not a type this app reads",)
    doc = result.doc_id
    for word in ("Zanzibarite", "Quokkaline", "Hopper"):  # subject, body, a recipient
        assert found_on(pipeline, word, doc) == "[mail.eml p.1]", word
    assert found_on(pipeline, "Gdansk", doc) == "[mail.eml p.2]"
    assert found_on(pipeline, "Controllers", doc) == "[mail.eml p.4]"
    assert found_on(pipeline, "INV-7731", doc) == "[mail.eml p.5]"
    assert found_on(pipeline, "PN-88-A", doc) == "[mail.eml p.6]"
    listed = page_text(pipeline, doc)
    assert "report.pdf — from page 2" in listed and "memo.docx — from page 5" in listed
    assert "setup.exe — not a type this app reads" in listed
    pipeline.delete(doc)  # the attachments go with the mail
    assert pipeline.documents() == []


@pytest.mark.office
def test_an_outlook_message_with_a_docx_and_an_embedded_message(pipeline, tmp_path):
    inner = mailfiles.outlook_message("Embedded Heliotrope", "The inner body, Marzipanic.")
    inner.add_attachment("expenses.pdf", EXPENSES, mime_type="application/pdf")
    attachments = {"report.pdf": REPORT, "memo.docx": memo(tmp_path)}
    path = mailfiles.outlook(tmp_path / "note.msg", attachments, embedded=[inner])
    result = pipeline.add_file(path)
    assert result.status == "indexed", result.message
    assert result.pages == 1 + 3 + 2 + 1 + 1 and result.warnings == ()
    doc = result.doc_id
    expected = {
        "Zanzibarite": 1, "Quokkaline": 1, "Gdansk": 2, "Controllers": 4, "INV-7731": 5,
        "PN-88-A": 6, "Heliotrope": 7, "Marzipanic": 7, "Ribeiro": 8,
    }  # fmt: skip
    for word, number in expected.items():
        assert found_on(pipeline, word, doc) == f"[note.msg p.{number}]", word
    listed = page_text(pipeline, doc)
    assert "ada@example.com" in listed and "Grace Hopper" in listed
    for line in (
        "report.pdf — from page 2",
        "memo.docx — from page 5",
        "Heliotrope.msg — from page 7",
    ):
        assert line in listed
    assert "expenses.pdf — from page 8" in page_text(pipeline, doc, 7)


def test_text_attachments_are_drawn_as_text_files_are(pipeline, tmp_path):
    page = b"<h1>Webby Albatrossity</h1><img src='http://127.0.0.1:9/tracker.png'>"
    attachments = {"notes.txt": b"Plain text attachment, Cormorantine.\n", "page.html": page}
    result = pipeline.add_file(mailfiles.eml(tmp_path / "texts.eml", attachments))
    assert result.status == "indexed" and result.pages == 3, result.message
    assert found_on(pipeline, "Cormorantine", result.doc_id) == "[texts.eml p.2]"
    assert found_on(pipeline, "Albatrossity", result.doc_id) == "[texts.eml p.3]"
    assert result.warnings == (
        "page.html: 1 remote or local resource was not loaded (images, styles, fonts): never "
        "fetched",
    )


def test_an_html_mail_shows_its_inline_image_and_fetches_nothing(pipeline, tmp_path):
    html = (
        "<html><head><style>h1 { color: #236; }</style></head><body><h1>Harbour Lighthouse</h1>"
        '<p>The chart: <img src="cid:chart@example"> shows Vermillionaire sales.</p></body></html>'
    )
    path = mailfiles.html_eml(tmp_path / "news.eml", html, {"chart@example": mailfiles.png("42")})
    result = pipeline.add_file(path)
    assert result.status == "indexed", result.message
    assert result.pages == 1 and result.warnings == ()  # the image is shown, not attached
    assert found_on(pipeline, "Vermillionaire", result.doc_id) == "[news.eml p.1]"
    listed = page_text(pipeline, result.doc_id)
    assert "Zanzibarite" in listed and "never shown" not in listed  # HTML, not the plain part
    assert "Attachments" not in listed
    converted = pipeline.settings.data_dir / CACHE / f"{result.doc_id}.pdf"
    command = ["pdfimages", "-list", str(converted)]
    shown = subprocess.run(command, check=True, capture_output=True, text=True)
    assert len(shown.stdout.strip().splitlines()) == 3  # two heading lines, then the image


def test_a_forwarded_mail_is_a_message_page_of_its_own(pipeline, tmp_path):
    words = {"subject": "Original Tangerinequest", "body": "First words, Oblivionaire."}
    inner = mailfiles.eml(tmp_path / "inner.eml", {"expenses.pdf": EXPENSES}, **words)
    result = pipeline.add_file(mailfiles.forwarded(tmp_path / "fwd.eml", inner, body="See below."))
    assert result.status == "indexed", result.message
    assert result.pages == 3
    doc = result.doc_id
    assert found_on(pipeline, "Oblivionaire", doc) == "[fwd.eml p.2]"
    assert found_on(pipeline, "Ribeiro", doc) == "[fwd.eml p.3]"
    assert "Original Tangerinequest.eml — from page 2" in page_text(pipeline, doc)
    assert "expenses.pdf — from page 3" in page_text(pipeline, doc, 2)


def test_a_mail_of_headers_only_still_makes_a_page(pipeline, tmp_path):
    path = tmp_path / "empty.eml"
    path.write_bytes(b"From: a@example.com\r\nSubject: Nothing but Ptarmigan\r\n\r\n")
    result = pipeline.add_file(path)
    assert result.status == "indexed" and result.pages == 1, result.message
    assert found_on(pipeline, "Ptarmigan", result.doc_id) == "[empty.eml p.1]"


def test_headers_and_bodies_in_any_charset(pipeline, tmp_path):
    result = pipeline.add_file(mailfiles.encodings(tmp_path / "charsets.eml"))
    assert result.status == "indexed", result.message
    doc = result.doc_id
    words = ("Zéphyrine", "Ultravioletta", "Ångströmsson", "Grégoire", "Hexadecagon",
             "Moussakaville", "Nihonbashiro", "Mysterion")  # fmt: skip
    for word in words:
        assert found_on(pipeline, word, doc) == "[charsets.eml p.1]", word
    # decoded exactly, Japanese included (no font here draws it, so read the tree itself)
    work = tmp_path / "work"
    work.mkdir()
    read = mailtree.Reader(work).eml((tmp_path / "charsets.eml").read_bytes(), 0)
    headers = dict(read.headers)
    assert headers["Subject"] == "Ultravioletta subject and 東京会議"
    assert headers["From"] == "Renée Ångströmsson <renee@example.com>"
    assert headers["To"] == "Grégoire <gregoire@example.com>"
    assert "東京会議 Nihonbashiro" in (work / read.body).read_text(encoding="utf-8")
    saved = pipeline.add_file(mailfiles.utf16_file(tmp_path / "sixteen.eml"))
    assert found_on(pipeline, "Sixteenfold", saved.doc_id) == "[sixteen.eml p.1]"


@pytest.fixture
def web() -> Iterator[tuple[str, Callable[[], list[str]]]]:
    with recording_server() as served:
        yield served


def test_a_hostile_batch_refuses_each_bad_mail_in_one_line(pipeline, tmp_path, web):
    url, asked = web
    folder = tmp_path / "inbox"
    folder.mkdir()
    mailfiles.many_attachments(folder / "archive.eml", 1000)
    mailfiles.nested_bomb(folder / "bomb.eml", 400)
    mailfiles.zip_named_msg(folder / "fake.msg")
    locked = pdfs.encrypted(tmp_path / "locked.pdf")
    owner_only = pdfs.encrypted(
        tmp_path / "owner.pdf", user="", source=SAMPLES / "expense_form.pdf"
    )
    attachments = {"secret.pdf": locked.read_bytes(), "claim.pdf": owner_only.read_bytes()}
    mailfiles.eml(folder / "locked.eml", attachments)
    mailfiles.remote_resources(folder / "tracked.eml", url)
    mailfiles.eml(folder / "good.eml", {"report.pdf": REPORT}, subject="Healthy Wombatling")
    results = {r.file: r for r in pipeline.add_paths([folder])}
    assert set(results) == {"archive.eml", "bomb.eml", "fake.msg", "locked.eml", "tracked.eml",
                            "good.eml"}  # fmt: skip
    refusals = {
        "archive.eml": "one message holds 1,000 attachments, over the 50-attachment limit",
        "bomb.eml": "messages nested more than 5 deep",
        "fake.msg": "named as an Outlook message, but its content is a zip archive",
    }
    for name, said in refusals.items():
        message = results[name].message
        assert results[name].status == "refused" and said in message, message
        assert "\n" not in message and str(tmp_path) not in message
    locked_mail = results["locked.eml"]
    assert locked_mail.status == "indexed" and locked_mail.pages == 2, locked_mail.message
    assert locked_mail.warnings == (
        "secret.pdf left out: password required (the PDF is encrypted)",
    )
    listed = page_text(pipeline, locked_mail.doc_id)
    assert "secret.pdf — password required (the PDF is encrypted)" in listed
    assert "claim.pdf — from page 2" in listed
    assert found_on(pipeline, "Ribeiro", locked_mail.doc_id) == "[locked.eml p.2]"
    tracked = results["tracked.eml"]
    assert tracked.status == "indexed", tracked.message
    assert tracked.warnings == (
        "3 remote or local resources were not loaded (images, styles, fonts): never fetched",
    )
    assert found_on(pipeline, "Pixelwatcher", tracked.doc_id) == "[tracked.eml p.1]"
    assert asked() == []
    good = results["good.eml"]
    assert good.status == "indexed" and good.pages == 4, good.message
    assert found_on(pipeline, "Wombatling", good.doc_id) == "[good.eml p.1]"


def test_limits_of_the_tree_are_refused_in_one_line(tmp_path):
    """The child's limits, read in this process (the pipeline runs the same code in a child)."""
    reader = mailtree.Reader(tmp_path)
    over = mailfiles.many_attachments(tmp_path / "over.eml", mailtree.MAX_ATTACHMENTS + 1)
    with pytest.raises(mailtree.OverLimit, match="51 attachments, over the 50-attachment"):
        reader.eml(over.read_bytes(), 0)
    at = mailfiles.many_attachments(tmp_path / "at.eml", mailtree.MAX_ATTACHMENTS)
    assert len(mailtree.Reader(tmp_path).eml(at.read_bytes(), 0).attachments) == 50
    deep = mailfiles.nested_bomb(tmp_path / "deep.eml", mailtree.MAX_NESTING + 1)
    with pytest.raises(mailtree.OverLimit, match="messages nested more than 5 deep"):
        mailtree.Reader(tmp_path).eml(deep.read_bytes(), 0)
    fine = mailfiles.nested_bomb(tmp_path / "fine.eml", mailtree.MAX_NESTING)
    assert mailtree.Reader(tmp_path).eml(fine.read_bytes(), 0).attachments
    many = mailfiles.many_parts(tmp_path / "many.eml")
    with pytest.raises(mailtree.OverLimit, match="over 500 MIME parts, the limit for one e-mail"):
        mailtree.Reader(tmp_path).eml(many.read_bytes(), 0)


def test_the_child_refuses_what_the_parser_cannot_read(tmp_path):
    """Deeper than Python's parser can go (it stops with a RecursionError), and an OLE file
    that is not an Outlook message: refused in one line by the child process."""
    budget = sandbox.Budget.start(60, 1024)
    deepest = mailfiles.nested_bomb(tmp_path / "deepest.eml", 2000)
    with pytest.raises(PdfTooLargeError, match=r"deepest\.eml: its parts are nested too deeply"):
        mailtree.read(deepest, "deepest.eml", tmp_path / "a", budget)
    word = mailfiles.ole_not_a_message(tmp_path / "word.msg")
    with pytest.raises(ConversionError, match=r"word\.msg: an OLE compound file, but not an Out"):
        mailtree.read(word, "word.msg", tmp_path / "b", budget)


def test_an_attachment_that_would_pass_the_page_limit_is_left_out():
    def attached(name: str, pages: int) -> Attachment:
        return Attachment(name, file=name, pdf=Path(name), pages=pages)

    top = Message([("Subject", "x")], pages=2)
    top.attachments = [attached("big.pdf", 9), attached("small.pdf", 1)]
    assert mail.place(top, 1, max_pages=10) == 4
    assert [a.start for a in top.attachments] == [None, 3]
    assert mail.listing(top.attachments[1], 10) == "small.pdf — from page 3"
    assert mail.left_out_notes(top, 10) == [
        "big.pdf left out: its 9 pages would take the mail over the 10-page limit"
    ]
    many = Message(
        [("Subject", "x")], attachments=[Attachment(f"{n}.exe", left_out="no") for n in range(7)]
    )
    assert (
        mail.left_out_notes(many, 10)[-1]
        == "2 more attachments left out (the message page lists them)"
    )


def test_a_mail_whose_content_is_not_what_its_name_says_is_refused(tmp_path):
    fake = mailfiles.zip_named_msg(tmp_path / "fake.msg")
    said = "fake.msg: named as an Outlook message, but its content is a zip archive"
    with pytest.raises(UnsupportedFileError, match=said):
        mail.check(fake, "fake.msg", None)
    binary = tmp_path / "binary.eml"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(UnsupportedFileError, match=r"binary\.eml: named as an e-mail message"):
        mail.check(binary, "binary.eml", None)
