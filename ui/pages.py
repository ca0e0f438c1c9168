"""The page view: one retrieved page large, titled with its document and page number, its
heatmap (on or off, at the chosen opacity, with a colour legend) for the whole question or one
word of it, prev/next through the turn's retrieved pages, and those pages as thumbnails.

Each chat turn keeps its own pages: the view shows one (turn, page) at a time. The chosen word
is kept when the page changes, and when the turn changes if the other turn's question has it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import gradio as gr

from rag import (
    ALPHA,
    CITATION_PATTERN,
    DocumentNotFoundError,
    Snippet,
    citation_mark,
    legend_colours,
)
from ui.collections import ChatTurn, Session
from ui.markdown import escape_markdown

WHOLE_QUERY = "whole question"
# How the viewer wants pages drawn: (word, heatmap on, opacity, word frames on), from
# PageView.settings.
Look = tuple[str | None, bool, float, bool]
EMPTY_TITLE = "Pages retrieved for your questions appear here."
CITATION = re.compile(CITATION_PATTERN)


@dataclass
class PageView:
    title: gr.Markdown
    image: gr.Image
    words: gr.Radio
    gallery: gr.Gallery
    snippet: gr.Markdown
    full: gr.File
    overlay: gr.Checkbox
    opacity: gr.Slider
    boxes: gr.Checkbox
    previous: gr.Button
    next: gr.Button

    @property
    def outputs(self) -> list:
        """What showing a page updates, in the order ``show`` returns them."""
        return [self.title, self.image, self.words, self.gallery, self.snippet, self.full]

    @property
    def settings(self) -> list:
        """The viewer's choices every page change reads (``Look``)."""
        return [self.words, self.overlay, self.opacity, self.boxes]


UNCHANGED = (gr.skip(),) * 6  # for every one of PageView.outputs


def render() -> PageView:
    title = gr.Markdown(EMPTY_TITLE, elem_id="page-title")
    snippet = gr.Markdown(elem_id="snippet")
    image = gr.Image(
        label="Page",
        show_label=False,
        elem_id="heatmap",
        interactive=False,
        format="png",
        height=720,
        buttons=["fullscreen", "download"],
    )
    with gr.Row():
        previous = gr.Button("◀ Previous", size="sm", elem_id="prev", min_width=80)
        next_ = gr.Button("Next ▶", size="sm", elem_id="next", min_width=80)
        overlay = gr.Checkbox(value=True, label="Heatmap", elem_id="overlay", min_width=100)
        boxes = gr.Checkbox(
            value=True, label="Frame the matched words", elem_id="boxes", min_width=100
        )
        opacity = gr.Slider(
            0.1, 1.0, value=ALPHA, step=0.05, label="Heatmap opacity", elem_id="opacity"
        )
    gr.HTML(legend_html(), elem_id="legend")
    full = gr.File(
        label="The page image at full size", interactive=False, elem_id="page-file", height=60
    )
    words = gr.Radio(
        label="Heatmap for", choices=[WHOLE_QUERY], value=WHOLE_QUERY, elem_id="tokens"
    )
    gallery = gr.Gallery(
        label="Retrieved pages (click one to view it)",
        columns=5,
        fit_columns=False,  # small thumbnails, their captions in view
        height="auto",
        object_fit="contain",
        allow_preview=False,
        elem_id="pages",
    )
    return PageView(
        title, image, words, gallery, snippet, full, overlay, opacity, boxes, previous, next_
    )


def legend_html() -> str:
    stops = ", ".join(legend_colours())
    return (
        '<div class="legend"><span>weak match</span>'
        f'<span class="legend-bar" style="background: linear-gradient(to right, {stops})">'
        "</span><span>strong match</span></div>"
    )


def show(session: Session, turn: int, hit: int, look: Look, *, gallery: bool = True):
    """Updates for ``PageView.outputs`` showing page ``hit`` of ``turn`` as ``look`` says: the
    title, the page with its heatmap, the word choices (the word kept if this turn's question
    has it) and, with ``gallery``, the turn's thumbnails with this one selected. A page whose
    document has been deleted since is refused with a toast naming it, and nothing changes."""
    chat = session.turns[turn]
    answer = chat.answer
    found = answer.hits[hit]
    word, overlay, opacity, boxes = look
    choices = word_choices(chat)
    word = word if word in choices else WHOLE_QUERY
    index = None if word == WHOLE_QUERY else choices.index(word) - 1
    try:
        image = answer.view(found, index, opacity, heatmap=overlay, boxes=boxes)
    except DocumentNotFoundError:
        gr.Warning(
            f"{found.name} has been deleted since this answer; ask again to search the rest."
        )
        if session.view[0] != turn:
            return UNCHANGED
        # The thumbnail clicked is selected in the browser: the page still shown is marked again.
        shown = gr.update(selected_index=session.view[1])
        return gr.skip(), gr.skip(), gr.skip(), shown, gr.skip(), gr.skip()
    session.view = (turn, hit)
    thumbnails = gr.update(value=thumbnails_of(chat), selected_index=hit) if gallery else gr.skip()
    return (
        page_title(chat, turn, hit),
        image,
        gr.update(choices=choices, value=word),
        thumbnails,
        snippet_markdown(answer.snippet(found)),
        str(found.image_path),  # the file as indexed: a link to the page at full size
    )


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
        f"score {found.score:.3g}{sides(found)}{cited}"
    )


def sides(found) -> str:
    """Each ranking's own score of a fused hit: `` (picture 12.3, words 4.1)``."""
    parts = [f"{side} {score:.3g}" for side, score in found.sides.items()]
    return f" ({', '.join(parts)})" if parts else ""


def thumbnails_of(chat: ChatTurn) -> list[tuple[str, str]]:
    """Gallery items: the page number and score first, so a cut caption still shows them."""
    cited = cited_hits(chat)
    return [
        (
            str(h.image_path),
            f"{citation_mark(h.unit, h.page_number)} · {h.score:.3g}"
            f"{' · cited' if i in cited else ''} · {h.name}",
        )
        for i, h in enumerate(chat.answer.hits)
    ]


def word_choices(chat: ChatTurn) -> list[str]:
    """The whole question, then each word of what was searched (a repeated word numbered)."""
    choices, seen = [WHOLE_QUERY], {}
    for word in chat.answer.words:
        seen[word.text] = seen.get(word.text, 0) + 1
        choices.append(word.text if seen[word.text] == 1 else f"{word.text} ({seen[word.text]})")
    return choices


def cited_hits(chat: ChatTurn) -> list[int]:
    """Which retrieved pages the answer cites, in citation order (none if it cites none)."""
    labels = [hit.citation for hit in chat.answer.hits]
    mentioned = dict.fromkeys(CITATION.findall(chat.text))
    return [labels.index(label) for label in mentioned if label in labels]
