"""The conversation's and the page view's pure parts, on hand-made turns: what the chat shows,
which pages count as cited, the word choices, the thumbnails' captions."""

from __future__ import annotations

from pathlib import Path

import torch

from rag.asking import Answer
from rag.index import Hit
from rag.view.heatmaps import QueryToken
from ui.chat import STOPPED, messages
from ui.collections import ChatTurn
from ui.pages import WHOLE_QUERY, cited_hits, thumbnails_of, word_choices

HITS = [
    Hit("a1", "report.pdf", 2, 12.5, Path("/pages/a1/2.png")),
    Hit("b2", "slides.pdf", 1, 9.25, Path("/pages/b2/1.png")),
]


def turn(text: str, question: str = "Revenue in 2024?", searched: str = "") -> ChatTurn:
    tokens = [
        QueryToken(1, "Revenue", 0, 7),
        QueryToken(2, "in", 8, 10),
        *(QueryToken(3 + i, digit, 11 + i, 12 + i) for i, digit in enumerate("2024")),
    ]
    searched = searched or question
    answer = Answer(
        question, HITS, torch.zeros(8, 4), tokens, reader=None, models=None, searched=searched
    )
    return ChatTurn(answer, "all documents", text)


def test_an_answer_that_cites_nothing_marks_no_page_as_cited():
    assert cited_hits(turn("I could not find it.")) == []
    assert cited_hits(turn("See [slides.pdf p.1], then [report.pdf p.2].")) == [1, 0]
    assert cited_hits(turn("Made up: [other.pdf p.9].")) == []


def test_words_not_tokens_are_offered():
    assert word_choices(turn("")) == [WHOLE_QUERY, "Revenue", "in", "2024"]


def test_captions_lead_with_page_and_score_and_say_which_are_cited():
    captions = [caption for _, caption in thumbnails_of(turn("[slides.pdf p.1]"))]
    assert captions == ["p.2 · 12.5 · report.pdf", "p.1 · 9.25 · cited · slides.pdf"]


def test_the_chat_shows_each_turn_with_what_was_searched_and_its_answer():
    first = turn("12 M€ [report.pdf p.2]")
    follow = turn("9 M€", question="And 2023?", searched="Revenue in 2023?")
    follow.stopped = True
    shown = messages([first, follow])
    assert [m["role"] for m in shown] == ["user", "assistant", "assistant"] * 2
    assert shown[1]["metadata"]["title"] == "searched · within all documents"
    assert shown[4]["metadata"]["title"].startswith("searched for: Revenue in 2023?")
    assert "\\[report.pdf p.2\\]" in shown[1]["content"]  # the pages found, shown literally
    assert shown[2]["content"] == "12 M€ [report.pdf p.2]"  # copied as written
    assert shown[5]["content"] == "9 M€" + STOPPED


def test_the_snippet_marks_the_matched_words_and_says_when_there_are_none():
    from rag.view.snippets import snippet
    from rag.words import PageText, Word
    from ui.pages import snippet_markdown

    words = ["Invoice", "number", "INV-2024-0173", "Customer:", "Halvorsen", "Marine", "AS"]
    page = PageText(1, tuple(Word(w, (0, 0, 0.1, 0.1)) for w in words), "layer")
    shown = snippet_markdown(snippet(page, "Who is the customer of invoice INV-2024-0173?"))
    assert shown == "**Invoice** number **INV-2024-0173** **Customer:** Halvorsen Marine AS"
    assert "None of the question's words" in snippet_markdown(snippet(page, "the of what"))
