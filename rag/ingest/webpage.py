"""An HTML page -> PDF, drawn by WeasyPrint in a child process under the file's time budget and
memory cap (``rag.ingest.sandbox``'s launcher), fetching nothing.

Text files (``rag.ingest.markup``) and e-mails (``rag.ingest.mail``) become one HTML page each,
and this draws it as a person would read it: headings, lists, tables, code. WeasyPrint runs no
script, and every resource the page names goes through one fetcher that reads only what the
page carries itself: ``data:`` URLs and, for an e-mail, its own inline parts (``cid:``). Nothing
is fetched from the network or read from the server's disk (``http:``, ``https:``, ``file:``,
relative paths); those images, styles and fonts are left out, and the user is told how many.

The PDF keeps the page's words as its text layer, so they are read exactly (never by OCR), with
the boxes where they are drawn. A page that draws to more pages than a file may have is refused
before the PDF is written.
"""

from __future__ import annotations

import html
import json
import re
import sys
import tempfile
from pathlib import Path

from rag.errors import ConversionError
from rag.ingest import sandbox

# Drawn under the page's own styles (which win): A4, readable type, tables with rules, code
# that wraps instead of running off the page, images no wider than the page.
STYLE = """
@page { size: A4; margin: 16mm 14mm; }
html { font-family: "DejaVu Sans", "Liberation Sans", sans-serif; font-size: 10pt;
       line-height: 1.35; color: #111; }
h1 { font-size: 18pt; } h2 { font-size: 15pt; } h3 { font-size: 12.5pt; }
h1, h2, h3, h4 { margin: 0.8em 0 0.35em; line-height: 1.2; }
pre, code { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 8.5pt; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f5f5f5;
      padding: 4pt 6pt; border-radius: 3pt; }
pre.source { background: none; padding: 0; margin: 0; }
p, li, td, th { overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 0.5em 0; max-width: 100%; }
th, td { border: 0.5pt solid #999; padding: 2pt 4pt; vertical-align: top; text-align: left; }
th { background: #eee; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
img, svg { max-width: 100%; }
blockquote { margin-left: 0; padding-left: 8pt; border-left: 2pt solid #ccc; color: #444; }
"""
# WeasyPrint breaks a run of characters without a space in time quadratic in its length (a run
# of 100,000 took two minutes): a run longer than LONG_RUN gets a break opportunity every
# BREAK_EVERY characters, a zero-width space, which the text layer leaves out.
LONG_RUN = 32
BREAK_EVERY = 16
_RUN = re.compile(rf"\S{{{LONG_RUN + 1},}}")
_ZERO_WIDTH_SPACE = "\u200b"


def to_pdf(
    page: str,
    target: Path,
    name: str,
    budget: sandbox.Budget,
    max_pages: int,
    *,
    parts: dict[str, Path] | None = None,
    style: str = "",
    markdown: bool = False,
) -> int:
    """Draw the HTML ``page`` as the PDF ``target`` within ``budget``; ``parts``: what
    ``cid:`` URLs may name (an e-mail's inline images); ``style``: more CSS under the page's
    own; ``markdown``: ``page`` is Markdown, rendered in the child (``markdown_html``), since
    markdown-it takes minutes on some hostile pages of a few MB. Returns how many resources
    the page named that were not loaded (remote, or on disk).
    """
    with tempfile.TemporaryDirectory(prefix="webpage-") as scratch:
        work = Path(scratch)
        source = work / ("page.md" if markdown else "page.html")
        report = work / "report.json"
        source.write_text(page, encoding="utf-8")
        named = {cid: sandbox.absolute(path) for cid, path in (parts or {}).items()}
        (work / "parts.json").write_text(json.dumps(named))
        (work / "style.css").write_text(STYLE + style, encoding="utf-8")
        arguments = [str(max_pages), str(work), sandbox.absolute(target)]
        result = sandbox.run_python(__name__, arguments, budget, name, "drawing its pages")
        if result.returncode != 0 or not report.is_file():
            said = sandbox.last_line(result.stderr) or "no reason"
            raise ConversionError(f"{name}: its pages could not be drawn ({said})")
        return int(json.loads(report.read_text())["not_loaded"])


def escape(text: str) -> str:
    """``text`` as HTML (``&``, ``<``, ``>`` and quotes escaped), its long runs breakable.

    >>> escape("a<b " + "x" * 40)
    'a&lt;b xxxxxxxxxxxxxxxx\u200bxxxxxxxxxxxxxxxx\u200bxxxxxxxx'
    """
    return html.escape(_RUN.sub(_breakable, text))


def _breakable(run: re.Match) -> str:
    text = run.group()
    return _ZERO_WIDTH_SPACE.join(
        text[i : i + BREAK_EVERY] for i in range(0, len(text), BREAK_EVERY)
    )


def not_loaded_note(count: int) -> tuple[str, ...]:
    """The note for a page whose remote or local resources were left out."""
    if not count:
        return ()
    things = "resource was" if count == 1 else "resources were"
    return (f"{count} remote or local {things} not loaded (images, styles, fonts): never fetched",)


# -- in the child ---------------------------------------------------------------------------


class Refused(Exception):
    """A page the child will not draw; its message is the reason, for people."""


def main(argv: list[str]) -> int:
    max_pages, work, target = int(argv[0]), Path(argv[1]), Path(argv[2])
    try:
        not_loaded = draw(work, target, max_pages)
    except TooLong as refusal:
        print(refusal, file=sys.stderr)
        return sandbox.OVER_LIMIT
    except (Refused, RecursionError) as refusal:
        print(refusal if isinstance(refusal, Refused) else "nested too deeply", file=sys.stderr)
        return sandbox.REFUSED
    (work / "report.json").write_text(json.dumps({"not_loaded": not_loaded}))
    return 0


class TooLong(Refused):
    pass


def draw(work: Path, target: Path, max_pages: int) -> int:
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # one line per refused URL otherwise
    parts = json.loads((work / "parts.json").read_text())
    fetcher = offline_fetcher(parts)
    if (work / "page.md").is_file():
        html = markdown_html((work / "page.md").read_text(encoding="utf-8"))
    else:
        html = (work / "page.html").read_text(encoding="utf-8")
    page = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher)
    style = weasyprint.CSS(string=(work / "style.css").read_text(encoding="utf-8"))
    document = page.render(stylesheets=[style])
    if len(document.pages) > max_pages:
        raise TooLong(f"it draws to {len(document.pages):,} pages, over the {max_pages}-page limit")
    if not document.pages:
        raise Refused("it draws to no page")
    document.write_pdf(target)
    return fetcher.refused


def markdown_html(text: str) -> str:
    """Markdown (CommonMark, with tables and strikethrough) as HTML, its text ``escape``d
    (long runs breakable); raw HTML in it is kept, drawn as a page's own.

    >>> page = markdown_html("# Title\\n\\n| a |\\n|---|\\n| ~~b~~ |")
    >>> page.split()[:5], "<td><s>b</s></td>" in page
    (['<h1>Title</h1>', '<table>', '<thead>', '<tr>', '<th>a</th>'], True)
    """
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    for rule, (before, after) in _MARKDOWN_TEXT.items():
        renderer.add_render_rule(rule, _text_rule(before, after))
    return renderer.render(text)


# Markdown's text, drawn with long runs breakable: what holds each kind.
_MARKDOWN_TEXT = {
    "text": ("", ""),
    "code_inline": ("<code>", "</code>"),
    "code_block": ("<pre><code>", "</code></pre>\n"),
    "fence": ("<pre><code>", "</code></pre>\n"),
}


def _text_rule(before: str, after: str):
    def render(_renderer, tokens, index, _options, _env) -> str:
        return before + escape(tokens[index].content) + after

    return render


def _fetcher_class():
    import weasyprint

    class Offline(weasyprint.URLFetcher):
        """Reads ``data:`` URLs and the ``cid:`` parts it was given; refuses every other URL
        (WeasyPrint then leaves that resource out)."""

        def __init__(self, parts: dict[str, str]) -> None:
            super().__init__(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
            self.parts, self.refused = parts, 0

        def fetch(self, url: str, headers=None):
            scheme = url.partition(":")[0].lower()
            if scheme == "cid" and url[4:].strip("<>") in self.parts:
                path = Path(self.parts[url[4:].strip("<>")])
                return weasyprint.urls.URLFetcherResponse(url, path.read_bytes())
            if scheme != "data":
                self.refused += 1
                raise ValueError("not fetched: the app reads nothing from the network or disk")
            return super().fetch(url, headers)

    return Offline


def offline_fetcher(parts: dict[str, str]):
    return _fetcher_class()(parts)
