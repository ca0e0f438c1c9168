"""Bad, broken, encrypted, trapped, costly and badly named files: each refused in one line or
rendered within the limits, never a crash, a hang or a write outside the data folder."""

from __future__ import annotations

import dataclasses
import json

import pytest
from PIL import Image

import app
from rag.errors import (
    CorruptPdfError,
    EmptyPdfError,
    EncryptedPdfError,
    NotAPdfError,
    PdfError,
    PdfLimitError,
    PdfTooLargeError,
)
from rag.ingest.names import MAX_NAME_BYTES, display_name
from rag.ingest.pdf import inspect_pdf, render_pages
from rag.pipeline import IndexResult
from tests.helpers import pdfs
from tests.helpers.files import write


def refused(path, settings, error=PdfError, password=None) -> str:
    with pytest.raises(error) as raised:
        inspect = inspect_pdf(path, settings, password=password)
        list(render_pages(path, path.parent / "pages", settings, inspect))
    message = str(raised.value)
    assert "\n" not in message and message.startswith(display_name(path.name))
    return message


# -- 1. not a PDF, or broken ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error", "words"),
    [
        ("empty", EmptyPdfError, "empty"),
        ("random", NotAPdfError, "not a PDF"),
        ("image", NotAPdfError, "not a PDF"),
        ("html", NotAPdfError, "not a PDF"),
        ("truncated", CorruptPdfError, "damaged"),
        ("header-only", PdfError, ""),
    ],
)
def test_files_that_are_not_pdfs_are_refused_with_the_reason(
    kind, error, words, settings, tmp_path
):
    path = pdfs.every_bad_file(tmp_path)[kind]
    assert words in refused(path, settings, error)


def test_what_poppler_can_repair_is_rendered(settings, tmp_path):
    for path in (
        pdfs.broken_xref(tmp_path / "xref.pdf"),
        pdfs.junk_before_header(tmp_path / "junk.pdf", 300),
    ):
        info, pages = pdfs.rendered(path, settings, tmp_path / path.stem / "pages")
        assert info.pages == len(pages) == 3


def test_what_poppler_reads_is_a_pdf_wherever_its_header_is(settings, tmp_path):
    """The header check is poppler's: junk past the first kilobyte, or no header at all."""
    for path in (
        pdfs.junk_before_header(tmp_path / "junk.pdf", 5000),
        pdfs.without_header(tmp_path / "headless.pdf"),
    ):
        info, pages = pdfs.rendered(path, settings, tmp_path / path.stem / "pages")
        assert info.pages == len(pages) == 3


# -- 2. encrypted -----------------------------------------------------------------------------


def test_a_user_password_is_required_then_accepted(settings, tmp_path):
    path = pdfs.encrypted(tmp_path / "locked.pdf", "secret", "owner")
    assert "password required" in refused(path, settings, EncryptedPdfError)
    assert "wrong password" in refused(path, settings, EncryptedPdfError, password="guess")
    info, pages = pdfs.rendered(path, settings, tmp_path / "pages", password="secret")
    assert info.pages == len(pages) == 3


@pytest.mark.parametrize(
    ("algorithm", "stored", "typed"),
    [
        # AES-256 (revision 6): the file's key comes from the SASLprep'd password
        ("AES-256", "ﬁle Ⅸ café", "ﬁle Ⅸ café"),
        ("AES-256", "café", pdfs.decomposed("café")),
        ("AES-256", "pass\u00a0word", "pass\u00a0word"),
        # RC4 (revision 3): Latin-1 bytes
        ("RC4-128", "café", "café"),
    ],
    ids=["ligature-and-numeral", "decomposed-accent", "no-break-space", "rc4-latin-1"],
)
def test_the_right_non_ascii_password_opens(algorithm, stored, typed, settings, tmp_path):
    path = pdfs.encrypted(tmp_path / "locked.pdf", stored, "owner", algorithm)
    info, pages = pdfs.rendered(path, settings, tmp_path / "pages", password=typed)
    assert info.pages == len(pages) == 3
    assert "wrong password" in refused(path, settings, EncryptedPdfError, password="cafe")


def test_a_pdf_with_only_an_owner_password_opens(settings, tmp_path):
    path = pdfs.encrypted(tmp_path / "restricted.pdf", "", "owner")
    info, pages = pdfs.rendered(path, settings, tmp_path / "pages")
    assert info.pages == len(pages) == 3


# -- 3. page-count and page-size traps --------------------------------------------------------


def test_a_pdf_without_pages_is_refused(settings, tmp_path):
    assert "no pages" in refused(pdfs.blank_pages(tmp_path / "n.pdf", []), settings)


@pytest.mark.parametrize("size", [(1, 1), (0.5, 800)])
def test_a_page_too_small_to_read_refuses_the_file(size, settings, tmp_path):
    path = pdfs.blank_pages(tmp_path / "tiny.pdf", [(612, 792), size])
    assert "too small to read" in refused(path, settings, EmptyPdfError)
    assert not list((tmp_path / "pages").glob("*.png"))[1:]  # at most the good page


def test_a_page_tree_that_lies_about_its_count_is_refused_or_rendered_whole(settings, tmp_path):
    path = pdfs.lying_page_count(tmp_path / "lying.pdf")
    try:
        info, pages = pdfs.rendered(path, settings, tmp_path / "pages")
    except PdfError as error:
        # poppler draws the missing pages as 1x1 images, or fails on them: refused either way
        assert any(words in str(error) for words in ("could not be rendered", "too small"))
    else:
        assert len(pages) == info.pages  # never fewer pages than announced


@pytest.mark.parametrize(
    "size", [(14400, 14400), (1_000_000, 1_000_000), (10, 14400)], ids=["poster", "absurd", "strip"]
)
def test_absurd_page_sizes_render_within_the_pixel_cap(size, settings, tmp_path):
    settings = dataclasses.replace(settings, max_page_pixels=2_000_000)
    path = pdfs.blank_pages(tmp_path / "big.pdf", [size])
    try:
        _, (page,) = pdfs.rendered(path, settings, tmp_path / "pages")
    except EmptyPdfError as error:  # a strip so thin it is below the readable minimum
        assert "too small to read" in str(error)
    else:
        assert page.width * page.height <= settings.max_page_pixels * 1.01


def test_rotated_and_mixed_pages_keep_their_orientation(settings, tmp_path):
    path = pdfs.blank_pages(tmp_path / "mixed.pdf", [(595, 842), (792, 612)], rotate=90)
    _, (first, second) = pdfs.rendered(path, settings, tmp_path / "pages")
    assert first.width > first.height  # portrait turned a quarter: landscape
    assert second.width < second.height


# -- 4. resource bombs ------------------------------------------------------------------------


def test_endless_rendering_is_stopped_at_the_time_limit(settings, tmp_path):
    path = pdfs.endless_drawing(tmp_path / "endless.pdf")
    settings = dataclasses.replace(settings, render_timeout_s=3)
    assert "RAG_RENDER_TIMEOUT_S" in refused(path, settings, PdfLimitError)


def test_rendering_over_the_memory_limit_is_refused(settings, tmp_path):
    # One page at 40 MP needs a ~120 MB bitmap: over a 100 MB cap, under the default.
    path = pdfs.blank_pages(tmp_path / "wide.pdf", [(5000, 5000)])
    big = dataclasses.replace(settings, dpi=90, max_page_pixels=40_000_000, render_memory_mb=100)
    assert "RAG_RENDER_MEMORY_MB" in refused(path, big, PdfLimitError)


@pytest.mark.slow  # runs to its 20 s render limit
def test_a_deflate_bomb_costs_at_most_the_limits(settings, tmp_path):
    path = pdfs.deflate_bomb(tmp_path / "bomb.pdf")
    settings = dataclasses.replace(settings, render_timeout_s=20, render_memory_mb=300)
    try:
        info, pages = pdfs.rendered(path, settings, tmp_path / "pages")
    except PdfLimitError:
        pass  # refused for time or memory
    else:
        assert len(pages) == info.pages == 1  # spaces draw nothing: a blank page is fine


def test_deeply_nested_objects_are_rendered_or_refused_within_the_limits(settings, tmp_path):
    path = pdfs.deeply_nested(tmp_path / "nested.pdf")
    settings = dataclasses.replace(settings, render_timeout_s=20)
    try:
        info, pages = pdfs.rendered(path, settings, tmp_path / "pages")
    except PdfError as error:  # e.g. poppler giving up on the page tree
        assert "\n" not in str(error)
    else:
        assert len(pages) == info.pages == 1


# -- 5. size limits ---------------------------------------------------------------------------


def test_limits_are_named_in_the_refusal(settings, tmp_path):
    many = pdfs.blank_pages(tmp_path / "many.pdf", [(612, 792)] * 6)
    message = refused(many, dataclasses.replace(settings, max_pages=5), PdfTooLargeError)
    assert "5-page limit" in message
    large = write(tmp_path / "large.pdf", b"%PDF-1.4\n" + b"0" * (3 << 20))
    message = refused(large, dataclasses.replace(settings, max_file_mb=2), PdfTooLargeError)
    assert "2 MB limit" in message


# -- 6. unsafe names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("/abs/path/report.pdf", "report.pdf"),
        ("..\\..\\windows\\win.pdf", "win.pdf"),
        ("nul\x00byte.pdf", "nulbyte.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("-rf.pdf", "-rf.pdf"),
        ("Résumé – 履歴書.pdf", "Résumé – 履歴書.pdf"),
        ("", "document.pdf"),
    ],
)
def test_names_are_made_safe_to_show(raw, shown):
    assert display_name(raw) == shown


def test_long_names_are_cut_on_a_character_boundary_keeping_the_extension():
    name = display_name("é" * 300 + ".pdf")
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith("….pdf")
    name.encode().decode()  # valid UTF-8


def test_hostile_names_never_write_outside_the_data_dir(tiny_models, tmp_path, capsys):
    folder = tmp_path / "uploads"
    files = pdfs.every_bad_file(folder / "bad")
    good = write(folder / ("名前" * 40 + ".pdf"), pdfs.SOURCE.read_bytes())
    data = tmp_path / "data"
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(data)}
    common = [f"--retriever={tiny_models / 'colqwen2'}", f"--data-dir={data}"]
    assert app.main(["index", "--json", str(folder), *common]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == len(files) + 1  # one line per file
    statuses = {record["file"]: record for record in records}
    same_bytes = {statuses[display_name(good.name)]["status"], statuses["-rf.pdf"]["status"]}
    assert same_bytes == {"indexed", "skipped"}  # a dash-named file reaches poppler intact
    for record in records:
        assert record["status"] in {"indexed", "skipped", "refused"}
        assert record["status"] != "refused" or "\n" not in record["error"]
    after = {p for p in tmp_path.rglob("*") if not p.is_relative_to(data)}
    assert after == before  # nothing written beside the inputs
    assert app.main(["list", "--json", *common]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    indexed = [r for r in records if r["status"] == "indexed"]
    assert sorted(d["doc_id"] for d in listed) == sorted(r["doc_id"] for r in indexed)
    for document in listed:  # every listed document is whole
        pages = sorted((data / "index" / "docs" / document["doc_id"]).glob("page-*.png"))
        assert len(pages) == document["pages"]
        Image.open(pages[0]).verify()


# -- 7. indexed, but worth a word -------------------------------------------------------------


def index_folder(folder, tiny_models, data, capsys, *options: str):
    """``app.py index FOLDER OPTIONS``: what it printed (stdout, stderr)."""
    common = [f"--retriever={tiny_models / 'colqwen2'}", f"--data-dir={data}"]
    assert app.main(["index", str(folder), *options, *common]) == 0
    return capsys.readouterr()


def index_json(folder, tiny_models, data, capsys) -> dict[str, dict]:
    out = index_folder(folder, tiny_models, data, capsys, "--json").out
    records = [json.loads(line) for line in out.splitlines()]
    return {record["file"]: record for record in records}


@pytest.mark.slow  # indexes 16 damaged pages
def test_blank_pages_of_a_damaged_file_and_xfa_forms_are_reported(tiny_models, tmp_path, capsys):
    folder = tmp_path / "inputs"
    folder.mkdir()
    pdfs.damaged_pages(folder / "fuzzed.pdf", pages=16, damaged=14)
    pdfs.with_blank_page(folder / "healthy.pdf")
    pdfs.xfa_form(folder / "form.pdf")
    records = index_json(folder, tiny_models, tmp_path / "data", capsys)
    assert {record["status"] for record in records.values()} == {"indexed"}
    fuzzed = records["fuzzed.pdf"]
    assert fuzzed["pages"] == 16
    assert fuzzed["warnings"] == ["14 blank pages with rendering errors: the file may be damaged"]
    assert records["healthy.pdf"]["warnings"] == []  # a deliberately empty page 2: quiet
    (xfa,) = records["form.pdf"]["warnings"]
    assert "XFA form" in xfa and "Please wait" in xfa
    message = IndexResult(**{**fuzzed, "warnings": tuple(fuzzed["warnings"])}).message
    assert message == (
        "fuzzed.pdf: indexed, 16 pages "
        "(14 blank pages with rendering errors: the file may be damaged)"
    )


def test_folders_find_documents_by_extension_and_pdfs_by_content(tiny_models, tmp_path, capsys):
    folder = tmp_path / "inputs"
    (folder / "sub").mkdir(parents=True)
    data = pdfs.SOURCE.read_bytes()
    write(folder / "REPORT.PDF", data + b"\n% upper case\n")
    write(folder / "sub" / "scan-0001", data + b"\n% no extension\n")
    write(folder / ".hidden.pdf", data + b"\n% hidden\n")
    write(folder / "setup.exe", b"MZ not a document")
    pdfs.image_named_pdf(folder / "photo.png")
    records = index_json(folder, tiny_models, tmp_path / "data", capsys)
    assert sorted(records) == ["REPORT.PDF", "photo.png", "scan-0001"]  # an image is a page
    assert {record["status"] for record in records.values()} == {"indexed"}
    # what was passed over is said, on stderr (stdout stays one line per file)
    said = index_folder(folder, tiny_models, tmp_path / "data", capsys)
    assert f"{folder}: not of the types indexed, skipped: setup.exe" in said.err
    assert "already indexed" in said.out and ".hidden" not in said.out + said.err
