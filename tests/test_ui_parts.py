"""The conversation's and the page view's pure parts, on hand-made turns: what the chat shows,
which pages count as cited, the word choices, the thumbnails' captions, scores as people read
them, stop, a scope whose document was deleted, a tab's session kept for its reload, and the
documents table."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from rag.asking import Answer
from rag.index import Document, Hit
from rag.view.choices import WordChoices
from rag.view.heatmaps import PageMaps, QueryToken, TokenMap
from ui import collections
from ui.chat import (
    STOPPED,
    Handlers,
    examples_update,
    messages,
    placeholder,
    stale_message,
    stale_scope,
)
from ui.collections import ChatTurn, Collections, Session
from ui.documents import breakable, table
from ui.pages import (
    CHIPS,
    WHOLE_QUERY,
    cited_hits,
    page_title,
    readable,
    show,
    thumbnails_of,
    word_chips,
)

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


class Answering(Answer):
    """An answer whose page maps are made up (no model, no index): word ``wN`` matches the
    page with strength N, so the best matched are the last words of the question."""

    def heatmaps(self, hit: Hit) -> PageMaps:
        grids = [TokenMap(t, torch.full((2, 2), float(t.index))) for t in self.tokens]
        return PageMaps(torch.zeros(2, 2), grids)

    def view(self, hit, word=None, opacity=0.5, heatmap=True, boxes=True, evidence=False):
        self.drawn = word
        return "page.png"

    def snippet(self, hit):
        return None


def long_session(words: int) -> Session:
    """A session with one turn, whose question is "the w1 w2 ... and wN"."""
    texts = ["the", *(f"w{i}" for i in range(1, words + 1)), "and"]
    starts = [sum(len(t) + 1 for t in texts[:i]) for i in range(len(texts))]
    tokens = [
        QueryToken(i + 1, t, s, s + len(t))
        for i, (t, s) in enumerate(zip(texts, starts, strict=True))
    ]
    answer = Answering(" ".join(texts), HITS, torch.zeros(1, 4), tokens, None, None)
    return Session(None, turns=[ChatTurn(answer, "all documents")])


def test_a_long_question_offers_a_few_chips_and_the_other_words_behind_more():
    session = long_session(60)
    _, _, chips, more, *_ = show(session, 0, 0, (None, True, 0.5, True, False))
    assert chips["choices"][0] == WHOLE_QUERY
    shown = chips["choices"][1:]
    assert shown == [f"w{i}" for i in range(60, 60 - CHIPS, -1)]  # the best matched first
    assert len(more["choices"]) == 60 - CHIPS and more["visible"]
    assert set(more["choices"]) == {f"w{i}" for i in range(1, 60 - CHIPS + 1)}
    # A word picked behind "more" is drawn, and shown as a chip, chosen.
    _, _, chips, _, *_ = show(session, 0, 0, ("w7", True, 0.5, True, False))
    assert chips["value"] == "w7" and chips["choices"][-1] == "w7"
    assert session.turns[0].answer.drawn.text == "w7"
    assert word_chips(WordChoices((), ()), "w7") == ([], [])


def test_captions_say_the_page_whether_it_is_cited_and_its_whole_document_name():
    captions = [caption for _, caption in thumbnails_of(turn("[slides.pdf p.1]"))]
    assert [c.replace("\u200b", "") for c in captions] == [
        "p.2\nreport.pdf",
        "p.1 · cited\nslides.pdf",
    ]
    assert captions[0].endswith("report.\u200bpdf")  # may wrap after a separator only


def test_scores_read_as_people_write_numbers():
    hit = Hit("a1", "report.pdf", 2, 1320.4, Path("/p.png"), visual_score=1320.4, text_score=0.0)
    chat = ChatTurn(Answer("q", [hit], torch.zeros(1, 4), [], None, None), "all documents")
    title = page_title(chat, 0, 0)
    assert "score 1,320 (picture 1,320, words 0)" in title and "e+" not in title
    assert [readable(s) for s in (0.0328, 14.04, 1.5e-7)] == ["0.0328", "14.0", "0.000000150"]


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


def test_a_name_keeps_its_underscores_in_the_chat():
    hit = Hit("a1", "pdfjs__tracemonkey.pdf", 13, 1.0, Path("/p.png"))
    answer = Answer("q", [hit, hit], torch.zeros(1, 4), [], None, None)
    note = messages([ChatTurn(answer, "all documents")])[1]["content"]
    # Two names in one note: their "__" would pair up as bold; escaped, they are shown.
    assert note.count("pdfjs\\_\\_tracemonkey.pdf") == 2


class Library:
    """What the UI's handlers ask of a pipeline, over a list of documents."""

    settings = SimpleNamespace(public_max_documents=2, public_max_pages=5, public_max_file_mb=1)

    def __init__(self, *documents: Document) -> None:
        self.listed = list(documents)
        self.dropped = False

    def documents(self) -> list[Document]:
        return self.listed

    def drop(self) -> None:
        self.dropped = True

    def drop_collections(self) -> None:
        pass

    def collection(self, name: str, **limits) -> Library:
        return Library()


REPORT = Document("3f2a9c1b7d", "annual_report.pdf", 3, "2026-12-03T10:00:00")
SLIDES = Document("77aa01bc22", "product_slides.pdf", 3, "2026-12-03T10:00:00", ("falcon",))


def request(session_hash: str) -> SimpleNamespace:
    return SimpleNamespace(session_hash=session_hash)


def test_stop_ends_only_an_answer_being_written():
    chat = Collections(Library(REPORT), public=False)
    session = chat.session(request("a"))
    finished = turn("12 M€ [report.pdf p.2]")
    finished.done = True
    session.turns.append(finished)
    Handlers(chat).stop(request("a"))
    assert not finished.stopped and messages(session.turns)[-1]["content"].endswith("p.2]")
    writing = turn("9 M€")
    session.turns.append(writing)
    session.asking = True
    Handlers(chat).stop(request("a"))
    assert writing.stopped and session.stop_asked


def test_a_deleted_document_leaves_the_scope_named_never_by_its_id():
    library = Library(REPORT, SLIDES)
    chat = Collections(library, public=False)
    session = chat.session(request("a"))
    chosen = ["doc:3f2a9c1b7d", "tag:falcon"]
    offered = Handlers(chat).scope_choices(chosen, request("a"))
    assert offered["value"] == chosen
    library.listed = [SLIDES]  # deleted by someone else
    assert stale_scope(session, chosen) == ["doc:3f2a9c1b7d"]
    message = stale_message(session, ["doc:3f2a9c1b7d"], chosen)
    assert "annual_report.pdf" in message and "3f2a" not in message
    assert Handlers(chat).scope_choices(chosen, request("a"))["value"] == ["tag:falcon"]
    library.listed = []
    assert stale_scope(session, ["tag:falcon"]) == ["tag:falcon"]  # no document has it now
    assert stale_scope(session, ["report.pdf"]) == []  # typed in: the engine says


def test_a_reload_takes_the_tabs_session_back(monkeypatch):
    chat = Collections(Library(REPORT), public=False)
    first = chat.resume(request("tab-1"), "")
    assert len(first.key) > 20  # random: nobody can guess another tab's
    first.turns.append(turn("12 M€"))
    first.asking = True  # an answer being written when the tab reloads is stopped
    chat.close(request("tab-1"))
    assert first.turns[0].stopped
    again = chat.resume(request("tab-1-reloaded"), first.key)
    assert again is first and chat.session(request("tab-1-reloaded")) is first
    other = chat.resume(request("tab-2"), "not-a-key")
    assert other is not first and other.turns == []


def test_a_closed_public_tab_loses_its_documents_unless_it_comes_back(monkeypatch):
    monkeypatch.setitem(collections.KEPT_SECONDS, True, 0)
    chat = Collections(Library(), public=True)
    gone = chat.resume(request("tab-1"), "")
    chat.close(request("tab-1"))
    chat.session(request("tab-2"))  # any later request sweeps (a timer does it too)
    assert gone.pipeline.dropped
    assert chat.resume(request("tab-3"), gone.key) is not gone


def test_the_empty_chat_and_the_examples_follow_the_library():
    assert "Add documents" in placeholder([])
    assert "Add documents" not in placeholder([SLIDES])
    assert examples_update([])["visible"] is False
    shown = examples_update([REPORT])
    assert shown["visible"] and all("Falcon" not in q for (q,) in shown["samples"])
    assert ["What was the revenue in 2024?"] in shown["samples"]


def test_the_documents_table_keeps_names_plain_and_breaks_them_after_separators():
    shown = table([REPORT, SLIDES])
    assert shown.data["Document"].tolist() == ["annual_report.pdf", "product_slides.pdf"]
    assert list(shown.data.columns) == ["Document", "Pages", "Tags"]  # the ids: on demand
    assert breakable("a__b<i>.pdf") == "a__<wbr>b&lt;i&gt;.<wbr>pdf"
