"""The page view: one retrieved page large, titled with its document and page number, the
question's words as chips right above it (the whole question, or one word, drives its
heatmap), the turn's retrieved pages as thumbnails right under it, then compact controls:
prev/next, heatmap on or off, word frames, opacity; the colour legend, a snippet of the page's
text and a link to the page at full size.

Each chat turn keeps its own pages: the view shows one (turn, page) at a time. The chosen word
is kept when the page changes, and when the turn changes if the other turn's question has it.

Every image goes out as a page file (``Session.publish``, ``ui.pagefiles``): the person's own,
checked at every request. A page whose document they may no longer read (deleted, or made
private) is refused when asked for; among the thumbnails it is a grey page.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import gradio as gr

from rag import (
    ALPHA,
    CITATION_PATTERN,
    DocumentNotFoundError,
    Snippet,
    WordChoices,
    citation_mark,
    legend_colours,
)
from ui.collections import ChatTurn, Collections, Session
from ui.gpu import gpu
from ui.markdown import escape_markdown

WHOLE_QUERY = "whole question"
CHIPS = 8  # word chips shown at once; the question's other words are a search away ("more")
IMAGE_HEIGHT = 520  # px on a desktop: the page, its words and its thumbnails on one screen
# How the viewer wants pages drawn: (word, heatmap on, opacity, word frames on, evidence boxes
# on), from PageView.settings.
Look = tuple[str | None, bool, float, bool, bool]
EMPTY_TITLE = "Pages retrieved for your questions appear here."
CITATION = re.compile(CITATION_PATTERN)


@dataclass
class PageView:
    title: gr.Markdown
    image: gr.Image
    words: gr.Radio
    more: gr.Dropdown
    gallery: gr.Gallery
    snippet: gr.Markdown
    full: gr.File
    overlay: gr.Checkbox
    opacity: gr.Slider
    boxes: gr.Checkbox
    evidence: gr.Checkbox

    @property
    def outputs(self) -> list:
        """What showing a page updates, in the order ``show`` returns them."""
        return [
            self.title,
            self.image,
            self.words,
            self.more,
            self.gallery,
            self.snippet,
            self.full,
        ]

    @property
    def settings(self) -> list:
        """The viewer's choices every page change reads (``Look``)."""
        return [self.words, self.overlay, self.opacity, self.boxes, self.evidence]


UNCHANGED = (gr.skip(),) * 7  # for every one of PageView.outputs


def cleared() -> tuple:
    """Updates for ``PageView.outputs`` showing no page (a new chat)."""
    words = gr.update(choices=[WHOLE_QUERY], value=WHOLE_QUERY)
    more = gr.update(choices=[], value=None, visible=False)
    thumbnails = gr.update(value=[], selected_index=None, visible=False)
    return EMPTY_TITLE, None, words, more, thumbnails, "", gr.update(value=None, visible=False)


class Handlers:
    """The page view's event handlers; each finds the caller's session from the request.
    Drawing a page needs no model (the vectors are stored)."""

    def __init__(self, collections: Collections) -> None:
        self.collections = collections

    @gpu
    def open_citation(  # noqa: PLR0917 (Gradio passes an event's inputs positionally)
        self, target: str, word, overlay, opacity, boxes, evidence, request: gr.Request
    ):
        """A citation link was clicked: ``target`` is "turn|[name p.N]|nonce"."""
        session = self.collections.session(request)
        turn, _, rest = (target or "").partition("|")
        label = rest.rpartition("|")[0]
        if not turn.isdigit() or int(turn) >= len(session.turns):
            return UNCHANGED
        hits = session.turns[int(turn)].answer.hits
        index = next((i for i, h in enumerate(hits) if h.citation == label), None)
        if index is None:  # a citation the answerer made up: not one of the turn's pages
            gr.Warning(f"{label} is not one of the pages retrieved for that question.")
            return UNCHANGED
        return show(session, int(turn), index, (word, overlay, opacity, boxes, evidence))

    @gpu
    def select_page(  # noqa: PLR0917 (Gradio passes an event's inputs positionally)
        self, word, overlay, opacity, boxes, evidence, event: gr.SelectData, request: gr.Request
    ):
        session = self.collections.session(request)
        turn, _ = session.view
        if turn >= len(session.turns):
            return UNCHANGED
        look = (word, overlay, opacity, boxes, evidence)
        return show(session, turn, event.index, look, gallery=False)

    def previous_page(  # noqa: PLR0917 (Gradio passes an event's inputs positionally)
        self, word, overlay, opacity, boxes, evidence, request: gr.Request
    ):
        return self._step(-1, (word, overlay, opacity, boxes, evidence), request)

    def next_page(  # noqa: PLR0917 (Gradio passes an event's inputs positionally)
        self, word, overlay, opacity, boxes, evidence, request: gr.Request
    ):
        return self._step(1, (word, overlay, opacity, boxes, evidence), request)

    @gpu
    def _step(self, delta: int, look: Look, request: gr.Request):
        """The turn's previous or next retrieved page (round the end)."""
        session = self.collections.session(request)
        turn, hit = session.view
        if turn >= len(session.turns):
            return UNCHANGED
        count = len(session.turns[turn].answer.hits)
        return show(session, turn, (hit + delta) % count, look)

    @gpu
    def redraw(  # noqa: PLR0917 (Gradio passes an event's inputs positionally)
        self, word, overlay, opacity, boxes, evidence, request: gr.Request
    ):
        """The word, the heatmap switch, its opacity, the word frames or the evidence boxes
        changed: the same page, drawn again."""
        session = self.collections.session(request)
        turn, hit = session.view
        if turn >= len(session.turns):
            return UNCHANGED
        return show(session, turn, hit, (word, overlay, opacity, boxes, evidence), gallery=False)


def render(collections: Collections) -> PageView:
    handlers = Handlers(collections)

    # -- layout -----------------------------------------------------------------------------
    title = gr.Markdown(EMPTY_TITLE, elem_id="page-title")
    with gr.Row(elem_id="word-row"):
        words = gr.Radio(
            label="Heatmap for",
            choices=[WHOLE_QUERY],
            value=WHOLE_QUERY,
            elem_id="tokens",
            scale=4,
            min_width=220,
        )
        more = gr.Dropdown(
            label="More words",
            choices=[],
            value=None,
            visible=False,
            filterable=True,
            elem_id="more-words",
            scale=1,
            min_width=140,
        )
    image = gr.Image(
        label="Page",
        show_label=False,
        elem_id="heatmap",
        interactive=False,
        format="png",
        height=IMAGE_HEIGHT,
        buttons=["fullscreen", "download"],
    )
    gallery = gr.Gallery(
        label="Pages retrieved for the question (click one to view it)",
        show_label=False,  # a label would sit over the first thumbnail
        columns=5,
        height="auto",
        object_fit="contain",
        allow_preview=False,
        buttons=[],  # a download button would sit over the last thumbnail
        visible=False,  # until there are pages
        elem_id="pages",
    )
    with gr.Row(elem_id="page-controls"):
        previous = gr.Button("◀ Previous", size="sm", elem_id="prev", min_width=60)
        next_ = gr.Button("Next ▶", size="sm", elem_id="next", min_width=60)
        overlay = gr.Checkbox(value=True, label="Heatmap", elem_id="overlay", min_width=100)
        boxes = gr.Checkbox(value=True, label="Frame words", elem_id="boxes", min_width=120)
        evidence = gr.Checkbox(value=False, label="Evidence", elem_id="evidence", min_width=100)
    with gr.Row(elem_id="heatmap-scale", equal_height=True):
        opacity = gr.Slider(
            0.1,
            1.0,
            value=ALPHA,
            step=0.05,
            label="Opacity",
            elem_id="opacity",
            buttons=[],
            scale=1,
            min_width=140,
        )
        gr.HTML(legend_html(), elem_id="legend", scale=2, min_width=180)
    snippet = gr.Markdown(elem_id="snippet")
    full = gr.File(
        label="The page image at full size",
        interactive=False,
        elem_id="page-file",
        height=60,
        visible=False,
    )
    cite = gr.Textbox(visible="hidden", elem_id="cite-target")  # ui/citations.js writes here
    view = PageView(
        title, image, words, more, gallery, snippet, full, overlay, opacity, boxes, evidence
    )

    # -- events -----------------------------------------------------------------------------
    # Drawing a page needs no model: it does not wait for answers.
    event = {"concurrency_id": "view", "concurrency_limit": 4, "api_visibility": "private"}
    look, shown = view.settings, view.outputs
    cite.change(handlers.open_citation, [cite, *look], shown, **event)
    gallery.select(handlers.select_page, look, shown, **event)
    previous.click(handlers.previous_page, look, shown, **event)
    next_.click(handlers.next_page, look, shown, **event)
    for control in (words, overlay, boxes, evidence):
        control.input(handlers.redraw, look, shown, **event)
    # A word picked among the others is drawn as if it were a chip (``show`` adds it).
    more.input(handlers.redraw, [more, overlay, opacity, boxes, evidence], shown, **event)
    opacity.release(handlers.redraw, look, shown, **event)
    return view


def legend_html() -> str:
    stops = ", ".join(legend_colours())
    return (
        '<div class="legend"><span>weak match</span>'
        f'<span class="legend-bar" style="background: linear-gradient(to right, {stops})">'
        "</span><span>strong match</span></div>"
    )


def show(session: Session, turn: int, hit: int, look: Look, *, gallery: bool = True):
    """Updates for ``PageView.outputs`` showing page ``hit`` of ``turn`` as ``look`` says: the
    title, the page with its heatmap, the word chips (the word kept if this turn's question
    has it) and the rest of the words, and, with ``gallery``, the turn's thumbnails with this
    one selected. A page whose document has been deleted since is refused with a toast naming
    it, and nothing changes."""
    chat = session.turns[turn]
    answer = chat.answer
    found = answer.hits[hit]
    word, overlay, opacity, boxes, evidence = look
    try:
        choices = answer.word_choices(found, CHIPS)
        chips, rest = word_chips(choices, word)
        word = word if word in chips else WHOLE_QUERY
        picked = None if word == WHOLE_QUERY else choices.named(word)
        drawn = answer.view(found, picked, opacity, heatmap=overlay, boxes=boxes, evidence=evidence)
        label = f"page-{found.page_number}"
        image = session.publish(drawn, found.doc_id, f"view-{found.page_number}")
        full = session.publish(found.image_path, found.doc_id, label)
    except DocumentNotFoundError:
        gr.Warning(
            f"{found.name} has been deleted since this answer; ask again to search the rest."
        )
        if session.view[0] != turn:
            return UNCHANGED
        # The thumbnail clicked is selected in the browser: the page still shown is marked again.
        return *UNCHANGED[:4], gr.update(selected_index=session.view[1]), *UNCHANGED[5:]
    session.view = (turn, hit)
    thumbnails = (
        gr.update(value=published(session, chat), selected_index=hit, visible=True)
        if gallery
        else gr.skip()
    )
    return (
        page_title(chat, turn, hit),
        image,
        gr.update(choices=[WHOLE_QUERY, *chips], value=word),
        gr.update(choices=rest, value=None, visible=bool(rest)),
        thumbnails,
        snippet_markdown(answer.snippet(found)),
        # The file as indexed: a link to the page at full size.
        gr.update(value=str(full), visible=True),
    )


def published(session: Session, chat: ChatTurn) -> list[tuple]:
    """The turn's thumbnails (``thumbnails_of``) as page files of the session's person; a
    page they may no longer read is a grey one (the others keep their places)."""
    shown = []
    for hit, (path, caption) in zip(chat.answer.hits, thumbnails_of(chat), strict=True):
        try:
            shown.append((session.publish(path, hit.doc_id, f"page-{hit.page_number}"), caption))
        except DocumentNotFoundError:
            gone = session.files.placeholder() if session.files else path
            shown.append((gone, caption.split("\n")[0] + "\n(no longer available)"))
    return shown


def snippet_markdown(found: Snippet | None) -> str:
    """The snippet with its matched words in bold; a line saying so when none matched."""
    if found is None:
        return "*None of the question's words are on this page (found by its picture).*"
    words = [
        f"**{escape_markdown(text)}**" if hit else escape_markdown(text)
        for text, hit in found.words
    ]
    return ("… " if found.cut_before else "") + " ".join(words) + (" …" if found.cut_after else "")


def page_title(chat: ChatTurn, turn: int, hit: int) -> str:
    found = chat.answer.hits[hit]
    cited = " · cited in the answer" if hit in cited_hits(chat) else ""
    where = citation_mark("page" if found.unit == "p." else found.unit, found.page_number)
    return (
        f"**{escape_markdown(found.name)} — {where}**  \n"
        f"question {turn + 1}, retrieved page {hit + 1} of {len(chat.answer.hits)} · "
        f"score {readable(found.score)}{sides(found)}{cited}"
    )


def sides(found) -> str:
    """Each ranking's own score of a fused hit: `` (picture 1,320, words 4.1)``."""
    parts = [f"{side} {readable(score)}" for side, score in found.sides.items()]
    return f" ({', '.join(parts)})" if parts else ""


def readable(score: float) -> str:
    """A score as people read numbers: three significant digits, never an exponent.

    >>> [readable(s) for s in (1320.4, 14.04, 1.4436, 0.032514, 0.00001234, 0.0, -2.5)]
    ['1,320', '14.0', '1.44', '0.0325', '0.0000123', '0', '-2.50']
    """
    if score == 0 or not math.isfinite(score):
        return f"{score:g}"
    magnitude = math.floor(math.log10(abs(score)))
    if magnitude >= 2:
        return f"{round(score):,}"
    return f"{score:.{2 - magnitude}f}"


def thumbnails_of(chat: ChatTurn) -> list[tuple[str, str]]:
    """Gallery items: the page and whether it is cited on one line, its document on the next
    (captions wrap, so neither is cut)."""
    cited = cited_hits(chat)
    return [
        (
            str(h.image_path),
            f"{citation_mark(h.unit, h.page_number)}{' · cited' if i in cited else ''}\n"
            + breakable(h.name),
        )
        for i, h in enumerate(chat.answer.hits)
    ]


def breakable(name: str) -> str:
    """``name`` with a zero-width space after its separators, where a caption may wrap.

    >>> breakable("pdfjs__trace.pdf") == "pdfjs__\u200btrace.\u200bpdf"
    True
    """
    return re.sub(r"([_.\-]+)", "\\1\u200b", name)


def word_chips(choices: WordChoices, chosen: str | None) -> tuple[list[str], list[str]]:
    """The words offered as chips (the page's best matched, ``CHIPS`` at most) and behind
    "more" (the others); a word ``chosen`` among the others joins the chips, shown chosen."""
    chips, rest = [w.text for w in choices.shown], [w.text for w in choices.rest]
    if chosen in rest:
        chips.append(chosen)
    return chips, rest


def cited_hits(chat: ChatTurn) -> list[int]:
    """Which retrieved pages the answer cites, in citation order (none if it cites none)."""
    labels = [hit.citation for hit in chat.answer.hits]
    mentioned = dict.fromkeys(CITATION.findall(chat.text))
    return [labels.index(label) for label in mentioned if label in labels]
