"""Text files in: plain text, Markdown, HTML, CSV/TSV, JSON and XML drawn as a person reads
them (WeasyPrint, offline), their words the source's own (the PDF's text layer, not OCR),
cited by page; every limit refused in one line before anything is drawn.

The files are made by ``tests.helpers.textfiles``.
"""

from __future__ import annotations

import dataclasses
import html
import re
import time
from pathlib import Path

import pytest

from rag.errors import PdfTooLargeError
from rag.ingest import formats, markup, sandbox, tables, webpage
from rag.ingest.decoding import decode
from rag.pipeline import Pipeline
from tests.helpers import textfiles
from tests.helpers.files import write
from tests.helpers.web import recording_server

WORDS = {  # a word only page 2 of each made file holds
    ".txt": "Quetzal4411",
    ".md": "Avocet7082",
    ".html": "Shrike2290",
    ".csv": "Dunlin5563",
    ".tsv": "Gannet3317",
    ".json": "Merlin9184",
    ".xml": "Puffin6045",
    ".text": "Sanderling1208",
    ".log": "Whimbrel7731",
    ".markdown": "Godwit4402",
    ".htm": "Bittern6623",
    ".xhtml": "Smew2019",
    ".tab": "Garganey8857",
}


def test_every_text_type_is_made_and_tested():
    assert set(WORDS) == set(textfiles.MAKERS) == set(formats.families()["text"])


@pytest.fixture
def pipeline(indexing_settings) -> Pipeline:
    """An empty pipeline that searches the pages' words alone."""
    return Pipeline(dataclasses.replace(indexing_settings, hybrid="text"))


@pytest.mark.parametrize("ending", list(WORDS))
def test_each_text_type_is_indexed_with_its_own_words_cited_by_page(pipeline, tmp_path, ending):
    path = textfiles.MAKERS[ending](tmp_path / f"file{ending}", WORDS[ending])
    result = pipeline.add_file(path)
    assert result.status == "indexed", result.message
    assert result.pages == textfiles.PAGE and result.warnings == ()
    top = pipeline.search(WORDS[ending], docs=[result.doc_id])[0]
    assert top.citation == f"[{path.name} p.{textfiles.PAGE}]"
    for number in (1, 2):  # the source's words, from the text layer
        assert pipeline.index.page_words(result.doc_id, number).source == "layer"
    assert WORDS[ending] in pipeline.index.page_words(result.doc_id, textfiles.PAGE).text


def word_box(pipeline: Pipeline, doc_id: str, text: str, page: int = 1):
    words = pipeline.index.page_words(doc_id, page).words
    return next(word.box for word in words if word.text == text)


def test_markdown_is_drawn_rendered_not_as_its_source(pipeline, tmp_path):
    result = pipeline.add_file(textfiles.markdown(tmp_path / "report.md", "Avocet7082"))
    page = pipeline.index.page_words(result.doc_id, 1)
    # no markup left: the heading's #, the table's pipes and rule, the code fence, the ~~
    assert not {"#", "|", "|---|---|", "```", "~~Struck~~"} & set(page.text.split())
    assert "Struck" in page.text.split() and "code_block_line" in page.text
    heading, prose = (
        word_box(pipeline, result.doc_id, "Kestrel"),
        word_box(pipeline, result.doc_id, "paragraph,"),
    )
    assert heading[3] - heading[1] > 1.5 * (prose[3] - prose[1])  # drawn larger
    # a table: the row's cells side by side on one line
    keeper, born = (
        word_box(pipeline, result.doc_id, "Hopper"),
        word_box(pipeline, result.doc_id, "1906"),
    )
    assert abs(keeper[1] - born[1]) < 0.005 and born[0] > keeper[2]
    assert pipeline.search("Hopper", docs=[result.doc_id])[0].citation == "[report.md p.1]"


def test_a_wide_table_is_cut_into_bands_each_with_the_first_column(pipeline, tmp_path):
    path = textfiles.wide_table(tmp_path / "survey.csv", columns=40, rows=20)
    result = pipeline.add_file(path)
    assert result.status == "indexed", result.message
    (note,) = result.warnings
    assert re.fullmatch(r"40 columns, too wide for a page: drawn in \d+ parts, each with the "
                        r"first column repeated", note)  # fmt: skip
    top = pipeline.search("r12c40", docs=[result.doc_id])[0]  # the far-right column
    words = pipeline.index.page_words(result.doc_id, top.page_number).text
    assert "r12c1" in words.split()  # its row still named by the first column
    assert re.search(r"columns \d+–40 of 40 \(column 1 repeated\)", words)
    assert "columns 1–" in pipeline.index.page_words(result.doc_id, 1).text


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("utf16-bom.txt", "utf-16"),
        ("utf16-no-bom.txt", "utf-16-le"),
        ("utf16-be-no-bom.md", "utf-16-be"),
        ("latin1.txt", "latin-1"),
        ("windows.csv", "cp1252"),
        ("utf8-bom.txt", "utf-8-sig"),
    ],
)
def test_every_encoding_reads_its_own_words(pipeline, tmp_path, name, encoding):
    result = pipeline.add_file(textfiles.encoded(tmp_path / name, encoding))
    assert result.status == "indexed", result.message
    words = re.findall(r"\w+", pipeline.index.page_words(result.doc_id, 1).text)
    assert {"Grüße", "München", "café", "crème", "naïve", "Zoë"} <= set(words), words[:12]
    assert pipeline.search("cafe", docs=[result.doc_id])[0].page_number == 1


def test_hostile_files_are_refused_in_one_line_and_the_rest_of_the_batch_indexed(
    pipeline, tmp_path
):
    folder = tmp_path / "batch"
    with recording_server() as (url, asked):
        textfiles.hostile_page(folder / "page.html", url, "Harrier4470")
        textfiles.markdown(folder / "good.md", "Avocet7082")
        textfiles.sparse(folder / "huge.csv", 2 * 2**30)
        textfiles.many_columns(folder / "columns.csv", 100_000)
        textfiles.one_line(folder / "line.md", 50)
        textfiles.zipped(folder / "archive.txt")
        textfiles.png(folder / "picture.txt")
        write(folder / "blank.txt", b" \n\t\n   \n")
        started = time.monotonic()
        results = {r.file: r for r in pipeline.add_paths([folder])}
        seconds = time.monotonic() - started
        fetched = asked()
    assert fetched == []  # nothing fetched from the network
    assert results["good.md"].status == results["page.html"].status == "indexed"
    (note,) = results["page.html"].warnings
    not_loaded = int(re.fullmatch(r"(\d+) remote or local resources were not loaded.*", note)[1])
    assert not_loaded >= 8
    assert pipeline.search("Harrier4470")[0].citation == "[page.html p.1]"
    refused = {name: r.error for name, r in results.items() if r.status == "refused"}
    assert refused == {
        "huge.csv": "huge.csv: 2048 MB is over the 500 MB limit",
        "columns.csv": (
            "columns.csv: row 1 has 100,000 columns, over the 1,000-column limit for a table"
        ),
        "line.md": (
            "line.md: 50 MB of text, over the 32 MB limit for a text file (it would draw to "
            "thousands of pages)"
        ),
        "archive.txt": "archive.txt: named as a text file, but its content is a zip archive",
        "picture.txt": "picture.txt: named as a text file, but its content is an image",
        "blank.txt": "blank.txt: the file holds no text",
    }
    assert all("\n" not in error for error in refused.values())
    assert len(pipeline.documents()) == 2
    assert seconds < 60, seconds  # two drawn; six refused, none of them drawn


@pytest.fixture
def never_drawn(monkeypatch):
    """Fail the test if any page is laid out."""

    def drawn(*_args, **_kwargs):
        raise AssertionError("laid out")

    monkeypatch.setattr(webpage, "to_pdf", drawn)


def convert(path: Path, settings, name: str | None = None) -> tuple[str, ...]:
    name = name or path.name
    markup.check(path, name, settings)
    budget = sandbox.Budget.start(60, 1024)
    return markup.to_pdf(path, path.with_suffix(".pdf"), name, budget, settings)


def refusal(path: Path, settings) -> str:
    with pytest.raises(PdfTooLargeError) as refused:
        convert(path, settings)
    return str(refused.value)


def test_a_file_past_the_page_limit_is_refused_on_its_estimate(settings, tmp_path, never_drawn):
    short = dataclasses.replace(settings, max_pages=20)
    lines = "\n".join(textfiles.sentence(n) for n in range(3_000)).encode()
    assert refusal(write(tmp_path / "log.log", lines), short) == (
        "log.log: about 47 pages of text, over the 20-page limit (RAG_MAX_PAGES)"
    )
    rows = "\n".join(f"{n},{textfiles.sentence(n, 2)}" for n in range(200_000)).encode()
    started = time.monotonic()
    said = refusal(write(tmp_path / "rows.csv", rows), short)
    assert re.fullmatch(r"rows\.csv: about [\d,]+ pages of table, over the 20-page limit "
                        r"\(RAG_MAX_PAGES\)", said), said  # fmt: skip
    assert int(said.split()[2].replace(",", "")) > 3_000  # all 200,000 rows, estimated
    assert time.monotonic() - started < 5  # reading stopped at the rows 20 pages hold
    prose = "\n\n".join(textfiles.sentence(n, 80) for n in range(2_000)).encode()
    assert refusal(write(tmp_path / "book.md", prose), short).startswith("book.md: about ")


def test_a_table_cell_over_its_limit_is_refused(settings, tmp_path, never_drawn):
    long_cell = f"a,b\n1,{'x' * (tables.MAX_CELL_CHARS + 1)}\n".encode()
    message = (
        "a cell in row 2 holds more than 32,767 characters, the limit for a table cell (a quote "
        "left open makes the rest of a file one cell)"
    )
    assert refusal(write(tmp_path / "cell.csv", long_cell), settings) == f"cell.csv: {message}"
    unclosed = b'a,b\n1,"open\n' + b"2,words\n" * 30_000  # the rest of the file in one cell
    assert refusal(write(tmp_path / "quote.csv", unclosed), settings) == f"quote.csv: {message}"


def test_a_text_file_over_the_text_limit_is_refused_before_it_is_read(settings, tmp_path):
    path = textfiles.sparse(tmp_path / "big.tsv", (markup.MAX_TEXT_MB + 1) * 2**20)
    with pytest.raises(PdfTooLargeError, match=r"^big\.tsv: 33 MB of text, over the 32 MB"):
        markup.check(path, path.name, settings)


def test_json_is_pretty_printed_when_it_parses_else_drawn_as_written():
    pretty = html.unescape(markup.draw('{"ring":"R1","seen":[1,2]}', ".json", "a.json", 100).html)
    assert '\n  "ring": "R1",\n  "seen": [\n    1,' in pretty
    for written in ('{"a": 1, "a": 2}', '{"a": 1}\n{"b": 2}\n', "[" * 100_000, "{not json"):
        page = markup.draw(written, ".json", "b.json", 100)
        assert webpage.escape(written[:40]) in page.html  # as written: no key lost, no crash


@pytest.mark.parametrize("ending", [".txt", ".text", ".log", ".xml"])
def test_plain_text_and_xml_are_their_source_in_monospace(ending):
    source = '<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<x>&a;&a;</x>\n\ttab'
    page = markup.draw(source, ending, "f" + ending, 100)
    assert '<pre class="source">' in page.html and "&amp;a;&amp;a;" in page.html  # not expanded


def test_a_tsv_is_split_on_tabs_and_a_csv_on_its_sniffed_delimiter():
    assert tables.delimiter_of("a;b;c\n1;2;3\n") == ";"
    assert tables.delimiter_of("a\tb\n1\t2\n") == "\t"
    page = markup.draw("Ring\tBird\nR1\tlark, wren\n", ".tsv", "t.tsv", 100)
    assert "<td>lark, wren</td>" in page.html and "<thead><tr><th>Ring</th>" in page.html
    ragged = markup.draw("a,b,c\n1\n1,2,3,4\n", ".csv", "r.csv", 100)
    assert ragged.html.count("<th>") == 4 and ragged.html.count("<td></td>") == 3


def test_markdown_is_rendered_in_the_drawing_child_not_in_the_app():
    # markdown-it takes ~30 µs a character on some hostile input: minutes for a few MB
    started = time.monotonic()
    page = markup.draw("![" * 500_000, ".md", "brackets.md", 2000)
    assert page.markdown and page.html == "![" * 500_000
    assert time.monotonic() - started < 1


def test_any_bytes_decode_and_legacy_code_pages_read_right():
    mixed = "crème brûlée\n".encode() + "café au lait\n".encode("cp1252")
    assert decode(mixed) == "crème brûlée\ncafé au lait\n"  # two encodings in one file
    greek, russian = "Καλημέρα κόσμε, τι κάνεις;", "Съешь же ещё этих мягких булок"
    assert decode(greek.encode("cp1253")) == greek
    assert decode(russian.encode("cp1251")) == russian
    assert decode(b'<meta charset="iso-8859-7">' + greek.encode("iso-8859-7")).endswith(greek)
    assert decode(bytes(range(256)))[65:70] == "ABCDE"  # every byte reads as something
