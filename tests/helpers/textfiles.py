"""Text files for the tests of ``rag.ingest.markup``: one of each kind, two pages long with a
word only its second page holds; wide tables; text in several encodings; and hostile ones
(a web page naming remote and local resources, a sparse 2 GB table, 100,000 columns, a
50 MB line, a zip or PNG named ``.txt``); and a local HTTP server that notes every request."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PIL import Image

from tests.helpers.files import write

PAGE = 2  # the page of each made file that holds its word
BIRDS = ["heron", "finch", "wren", "plover", "lark", "thrush", "rook", "swift", "martin", "curlew"]


def sentence(number: int, words: int = 9) -> str:
    """Filler line ``number``: birds, different from line to line, none a test's word."""
    return " ".join(BIRDS[(number * 7 + k * 3) % len(BIRDS)] for k in range(words))


def plain(path: Path, word: str) -> Path:
    """90 lines (a page holds 65): ``word`` on line 80."""
    lines = [sentence(n) for n in range(90)]
    lines[79] = f"the parcel {word} arrived"
    return write(path, "\n".join(lines).encode())


def markdown(path: Path, word: str) -> Path:
    """A heading, a table, a list and a code block on page 1; sections after it, ``word`` in
    the table of the last one, on page 2."""
    sections = "\n\n".join(
        f"## Section {n}\n\n{sentence(n, 40)}\n\n- {sentence(n + 1, 4)}\n- {sentence(n + 2, 4)}"
        for n in range(10)
    )
    text = (
        "# Kestrel Report\n\nThe first paragraph, in plain prose about wrens.\n\n"
        "| Keeper | Born |\n|---|---|\n| Hopper | 1906 |\n\n"
        "- ~~Struck~~ item\n- second item\n\n```\ncode_block_line = 42\n```\n\n"
        f"{sections}\n\n## Last\n\n| Ring | Bird |\n|---|---|\n| {word} | plover |\n"
    )
    return write(path, text.encode())


def html_page(path: Path, word: str) -> Path:
    paragraphs = "".join(f"<h2>Part {n}</h2><p>{sentence(n, 60)}</p>" for n in range(14))
    page = (
        "<!DOCTYPE html><html><head><title>Notes</title></head><body><h1>Field notes</h1>"
        f"{paragraphs}<p>Ring number <b>{word}</b> seen.</p></body></html>"
    )
    return write(path, page.encode())


def table(path: Path, word: str, delimiter: str = ",") -> Path:
    """A header and 80 rows of four columns (a page holds about 48): ``word`` in row 70."""
    rows = [["Ring", "Bird", "Place", "Count"]]
    rows += [[f"R{n:03}", BIRDS[n % 10], BIRDS[(n * 3) % 10], str(n)] for n in range(80)]
    rows[70][2] = word
    return write(path, "\n".join(delimiter.join(row) for row in rows).encode())


def json_file(path: Path, word: str) -> Path:
    """A minified list of 12 records (pretty-printed: about 110 lines): ``word`` in the last."""
    records = [{"ring": f"R{n:03}", "bird": BIRDS[n % 10], "seen": [n, n + 1]} for n in range(12)]
    records[-1]["note"] = word
    return write(path, json.dumps(records, separators=(",", ":")).encode())


def xml_file(path: Path, word: str) -> Path:
    rows = "\n".join(f'  <bird ring="R{n:03}">{BIRDS[n % 10]}</bird>' for n in range(85))
    rows += f"\n  <bird ring='R999'>{word}</bird>"
    return write(path, f'<?xml version="1.0"?>\n<birds>\n{rows}\n</birds>\n'.encode())


MAKERS: dict[str, Callable[[Path, str], Path]] = {
    ".txt": plain,
    ".md": markdown,
    ".html": html_page,
    ".csv": table,
    ".tsv": partial(table, delimiter="\t"),
    ".json": json_file,
    ".xml": xml_file,
}
# The other names of the same kinds, made the same way.
MAKERS |= {".text": plain, ".log": plain, ".markdown": markdown, ".htm": html_page}
MAKERS |= {".xhtml": html_page, ".tab": MAKERS[".tsv"]}


def wide_table(path: Path, columns: int = 40, rows: int = 20, delimiter: str = ";") -> Path:
    """``columns`` columns of cells ``r{row}c{column}`` (1-based), a header ``name{column}``."""
    lines = [delimiter.join(f"name{c}" for c in range(1, columns + 1))]
    lines += [delimiter.join(f"r{r}c{c}" for c in range(1, columns + 1)) for r in range(1, rows)]
    return write(path, "\n".join(lines).encode())


# Words whose letters are outside ASCII, in every encoding the encodings test writes.
ACCENTED = "Grüße aus München: café crème, naïve Zoë"


def encoded(path: Path, encoding: str, text: str = ACCENTED) -> Path:
    """``text`` (a line of it, then filler) in ``encoding`` (``utf-8-sig``, ``utf-16`` bring
    their byte-order marks)."""
    lines = [text] + [sentence(n) for n in range(5)]
    return write(path, "\n".join(lines).encode(encoding))


def sparse(path: Path, size: int) -> Path:
    """A CSV of ``size`` bytes that takes no disk: a few rows, then a hole."""
    write(path, b"a,b,c\n1,2,3\n")
    with path.open("r+b") as handle:
        handle.truncate(size)
    return path


def many_columns(path: Path, columns: int = 100_000) -> Path:
    return write(path, (",".join(f"c{n}" for n in range(columns)) + "\n1,2,3\n").encode())


def one_line(path: Path, megabytes: int = 50) -> Path:
    """Markdown of one line of ``megabytes`` MB (words, no newline)."""
    return write(path, b"lark " * (megabytes * 2**20 // 5))


def zipped(path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inside.txt", "words")
    return write(path, buffer.getvalue())


def png(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(buffer, "PNG")
    return write(path, buffer.getvalue())


def dot_png() -> str:
    """A 2 x 2 PNG as a data: URL (which a page may use: it is in the page)."""
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), "blue").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def hostile_page(path: Path, url: str, word: str) -> Path:
    """A web page that names ``url`` (a server's) and the server's disk in every way a page can
    ask for something: stylesheet, @import, font, background, script, images, iframe, object,
    embed, attachment, SVG image; and a data: image, which is the page's own."""
    page = f"""<!DOCTYPE html><html><head>
<link rel="stylesheet" href="{url}/style.css">
<style>@import url("{url}/imported.css");
@font-face {{ font-family: Far; src: url("{url}/font.woff"); }}
body {{ background: url("{url}/background.png"); font-family: Far, sans-serif; }}</style>
<script src="{url}/script.js"></script>
<script>document.write('<img src="{url}/written.png">'); fetch("{url}/fetched");</script>
</head><body><h1>Harrier notes</h1><p>The word is {word}.</p>
<img src="{url}/remote.png"><img src="file:///etc/passwd"><img src="file:///etc/hostname">
<img src="{dot_png()}">
<iframe src="{url}/frame.html"></iframe><object data="{url}/object.svg"></object>
<embed src="{url}/embed.svg"><link rel="attachment" href="{url}/attached.pdf">
<svg width="10" height="10"><image href="{url}/svg.png" width="10" height="10"/></svg>
</body></html>"""
    return write(path, page.encode())
