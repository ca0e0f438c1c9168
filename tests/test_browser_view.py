"""What a new user meets in a real browser, on a desktop's screen and a phone's (issue 29): the
page view within reach (the page, the words that drive its heatmap and the turn's pages on
one screen, nothing overlapping or cut), stop only while something runs, a deleted document
leaving every scope, tags, a reload, uploads that report file by file, and the chat's words.

After every step that can go wrong, no element may be left showing an error badge, and every
image on the page must have loaded. Screenshots are saved in ``test-artifacts/``.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.helpers import SAMPLES
from tests.helpers.browser import (
    ANSWERS,
    DESKTOP,
    PHONE,
    SIZES,
    TITLE,
    ZERO_WIDTH,
    ask,
    assert_healthy,
    box,
    choose,
    chromium,
    clipped,
    close_toasts,
    open_app,
    overlap,
    screenshot,
    upload,
    wait_for_status,
    wait_for_toast,
)
from tests.helpers.servers import app_env, running_app

pytestmark = [pytest.mark.models, pytest.mark.browser]

UNDERSCORED = "pdfjs__tracemonkey.pdf"  # Markdown must not eat its underscores
# A long question: far more words than a picker can show at once.
LONG_QUESTION = "What was the revenue in 2024 " + " ".join(
    f"{word}{n}" for n in range(8) for word in ("sensor", "margin", "growth", "outlook", "hall")
)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def test_the_page_its_words_and_the_turns_pages_on_one_screen(browser, tiny_models, tmp_path):
    """Items 2, 3, 5, 6, 14, 15, 16, at both sizes; 8 on a desktop."""
    named = tmp_path / UNDERSCORED
    shutil.copy(SAMPLES / "annual_report.pdf", named)
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_MAX_NEW_TOKENS": "16"}
    with running_app(env, log=tmp_path / "server.log") as url:
        for name, size in SIZES.items():
            console: list[str] = []
            page = open_app(browser, url, size, console)
            page.wait_for_timeout(1000)
            assert console == [], console  # no warning on load (the status line's label)
            if name == "desktop":
                upload(page, named)
            ask(page, LONG_QUESTION, 1)
            check_the_page_view(page, size)
            check_the_words(page)
            check_the_chat_shows_names_as_written(page)
            assert_healthy(page)
            scroll_to(page, TITLE)
            check_on_one_screen(page, size)
            screenshot(page, f"{name}-page-view.png")
            if name == "desktop":
                check_a_chinese_question_offers_its_words(page)
            page.close()


def scroll_to(page, selector: str) -> None:
    """Scroll until ``selector`` is just under the top of the screen (or as far as can be)."""
    page.evaluate(
        "s => window.scrollTo(0, document.querySelector(s).getBoundingClientRect().top"
        " + window.scrollY - 8)",
        selector,
    )
    page.wait_for_timeout(300)


def check_on_one_screen(page, size: dict) -> None:
    """The page, its word chips and the turn's thumbnails, all within the screen, apart."""
    parts = {
        "title": box(page, TITLE),
        "words": box(page, "#tokens"),
        "page": box(page, "#heatmap img"),
        "thumbnails": box(page, "#pages .grid-container"),
    }
    for part, found in parts.items():
        assert found["y"] >= 0 and found["y"] + found["height"] <= size["height"], (part, found)
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not overlap(parts[a], parts[b]), (a, b, parts[a], parts[b])


def check_the_page_view(page, size: dict) -> None:
    """Controls apart and readable; thumbnails with their whole caption under the page image,
    no label over them, no empty space under them; a score as people write numbers."""
    controls = ["#prev", "#next", "#overlay label", "#boxes label", "#opacity"]
    boxes = {c: box(page, c) for c in controls}
    for i, a in enumerate(controls):
        for b in controls[i + 1 :]:
            assert not overlap(boxes[a], boxes[b]), (a, b)
    whole = "#prev, #next, #overlay, #boxes, #opacity, #overlay label, #boxes label"
    assert clipped(page, whole) == []  # "Heatma", "matchec" once
    thumbnails = page.locator("#pages .thumbnail-item")
    assert thumbnails.count() == 3
    for i in range(3):
        item = thumbnails.nth(i)
        caption = item.locator(".caption-label")
        assert UNDERSCORED in caption.inner_text().replace(ZERO_WIDTH, "")
        shown, picture = caption.bounding_box(), item.locator("img").bounding_box()
        assert shown["y"] >= picture["y"] + picture["height"] - 1  # under the page, not over
    assert clipped(page, "#pages .caption-label") == []
    gallery, grid = box(page, "#pages"), box(page, "#pages .grid-container")
    assert gallery["y"] + gallery["height"] <= grid["y"] + grid["height"] + 40
    assert not page.locator("#pages [data-testid=block-label]").is_visible()
    assert clipped(page, "#documents th span, #documents th") == []  # "Pages" whole
    assert not re.search(r"\de[+-]\d", page.inner_text(TITLE))
    assert size["width"] >= box(page, "#page-controls")["width"]


def check_the_words(page) -> None:
    """A handful of word chips; the other words one search away, drawn as a chip once picked."""
    chips = page.locator("#tokens label").all_inner_texts()
    assert 3 <= len(chips) <= 9 and chips[0].strip() == "whole question"
    assert box(page, "#tokens")["height"] <= 160
    page.click("#more-words input")
    options = page.locator("ul[role=listbox] li").all_inner_texts()
    assert len(options) >= 20 and not set(options) & {c.strip() for c in chips}
    word = options[-1]  # the least matched: picked by typing part of it
    src = page.get_attribute("#heatmap img", "src")
    page.keyboard.type(word)
    page.locator("ul[role=listbox] li", has_text=word).first.click()
    page.wait_for_function(f"() => document.querySelector('#heatmap img')?.src !== {src!r}")
    page.wait_for_function(
        "w => document.querySelector('#tokens input:checked')?.value === w", arg=word
    )
    assert len(page.locator("#tokens label").all_inner_texts()) == len(chips) + 1


def check_a_chinese_question_offers_its_words(page) -> None:
    """Each character a word (matched to its tokens), the full-width question mark none."""
    page.click("#new-chat")
    page.wait_for_function("() => !document.querySelector('#chat .user-row')")
    ask(page, "2024年的收入是多少？", 1)
    chips = [c.strip() for c in page.locator("#tokens label").all_inner_texts()[1:]]
    assert len(chips) >= 3 and "2024" in chips and "收" in chips, chips
    assert not [c for c in chips if "？" in c or len(c) > 4], chips


def check_the_chat_shows_names_as_written(page) -> None:
    """The note's links read ``pdfjs__tracemonkey.pdf``; no label holds a Markdown escape."""
    page.locator("#chat .thought-group .title").first.click()
    link = page.locator("#chat a.cite").first
    link.wait_for()
    assert link.inner_text().startswith(f"[{UNDERSCORED} p.")
    labels = page.eval_on_selector_all(
        "#chat [aria-label]", "els => els.map(e => e.getAttribute('aria-label'))"
    )
    assert any(UNDERSCORED in label for label in labels)
    assert not [label for label in labels if "\\" in label]
    page.locator("#chat .thought-group .title").first.click()


def test_stop_a_deleted_scope_tags_and_a_refused_thumbnail(browser, tiny_models, tmp_path):
    """Items 1, 4, 7, 11: a desktop user and a phone user of one library."""
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_MAX_NEW_TOKENS": "16"}
    log = tmp_path / "server.log"
    with running_app(env, log=log) as url:
        desk = open_app(browser, url, DESKTOP)
        phone = open_app(browser, url, PHONE)
        upload(desk, "annual_report.pdf", "product_slides.pdf", "expense_form.pdf")
        ids = document_ids(tmp_path / "data")

        # Stop is for an answer being written: a finished one is never changed.
        for page in (desk, phone):
            assert page.locator("#stop").is_disabled()
            ask(page, "What was the revenue in 2024?", 1)
            assert page.locator("#stop").is_disabled()
            page.click("#stop", force=True)
            page.wait_for_timeout(700)
            assert "(stopped)" not in page.inner_text("#chat")

        # Scoped, then the document deleted here: it leaves this scope box at once.
        choose(desk, "#scope", "annual_report.pdf")
        ask(desk, "What was the revenue in 2024?", 2)
        delete(desk, "annual_report.pdf")
        desk.wait_for_function(
            "() => !document.querySelector('#scope').innerText.includes('annual')"
        )

        # The other user's scope: left at their next question, named, never by its id.
        phone.click("#scope input")
        phone.locator("ul[role=listbox] li", has_text="product_slides.pdf").click()
        phone.keyboard.press("Escape")
        ask(phone, "Next steps?", 2)
        delete(desk, "product_slides.pdf")
        phone.fill("#q textarea", "And the milestones?")
        phone.click("#ask")
        wait_for_toast(phone, "product_slides.pdf left Search within")
        phone.wait_for_timeout(500)
        assert "product_slides" not in phone.inner_text("#scope")
        assert phone.input_value("#q textarea") == "And the milestones?"  # kept to ask again
        assert phone.locator("#chat .user-row").count() == 2
        for page in (desk, phone):
            text = page.inner_text("body")
            assert not [i for i in ids if i[:8] in text]  # no id anywhere, toasts included
        close_toasts(phone)
        ask(phone, "And the milestones?", 3)

        # Its thumbnails, refused now: only the page still shown looks selected.
        desk.locator("#pages .thumbnail-item").nth(1).click()
        wait_for_toast(desk, "annual_report.pdf has been deleted since this answer")
        accents = desk.eval_on_selector_all(
            "#pages .thumbnail-item",
            "els => els.map(e => getComputedStyle(e).borderColor)",
        )
        selected = desk.eval_on_selector(
            "#pages .thumbnail-item.selected", "e => getComputedStyle(e).borderColor"
        )
        assert accents.count(selected) == 1, accents

        # Tags: applied, the boxes empty again, the document still chosen, its tags shown.
        choose(desk, "#delete-choice", "expense_form.pdf")
        desk.click("#tags")
        desk.fill("#add-tags textarea, #add-tags input", "travel 2024")
        desk.click("#tag")
        desk.wait_for_function(
            "() => document.querySelector('#doc-details')?.innerText.includes('tags: 2024, travel')"
        )
        assert desk.input_value("#add-tags textarea, #add-tags input") == ""
        assert "expense_form.pdf" in desk.input_value("#delete-choice input")
        choose(phone, "#delete-choice", "expense_form.pdf")
        phone.wait_for_function(
            "() => document.querySelector('#doc-details')?.innerText.includes('tags: 2024, travel')"
        )
        for name, page in (("desktop", desk), ("phone", phone)):
            assert_healthy(page)
            screenshot(page, f"{name}-after-delete-and-tags.png", full_page=True)
    assert "Traceback" not in log.read_text()


def delete(page, name: str) -> None:
    choose(page, "#delete-choice", name)
    page.click("#delete")
    page.wait_for_selector("#confirm-delete", state="visible")
    page.click("#really-delete")
    wait_for_status(page, f"Deleted {name}")


def document_ids(data) -> list[str]:
    return [folder.name for folder in (data / "index" / "docs").iterdir()]


def test_a_reload_keeps_the_conversation_and_a_public_sessions_documents(
    browser, tiny_models, tmp_path
):
    """Item 9: in library mode on a desktop, in public mode on a phone."""
    env = {**app_env(tiny_models, tmp_path / "library"), "RAG_MAX_NEW_TOKENS": "16"}
    with running_app(env, log=tmp_path / "library.log") as url:
        page = open_app(browser, url, DESKTOP)
        upload(page, "annual_report.pdf")
        reload_and_follow_up(page, "desktop")
    env = {**app_env(tiny_models, tmp_path / "public"), "RAG_MAX_NEW_TOKENS": "16"}
    with running_app(env, "--public", log=tmp_path / "public.log") as url:
        page = open_app(browser, url, PHONE)
        upload(page, "annual_report.pdf")
        reload_and_follow_up(page, "phone")
        assert "annual_report.pdf" in page.inner_text("#documents")  # still this session's


def reload_and_follow_up(page, name: str) -> None:
    ask(page, "What was the revenue in 2024?", 1)
    answer = page.locator(ANSWERS).last.inner_text()
    title = page.inner_text(TITLE)
    page.reload()
    page.wait_for_selector("#q textarea")
    page.wait_for_function("() => document.querySelectorAll('#chat .user-row').length === 1")
    page.wait_for_function(f"() => document.querySelector('#page-title').innerText === {title!r}")
    assert page.locator(ANSWERS).last.inner_text() == answer
    ask(page, "And in 2023?", 2)  # a follow-up: the conversation is the server's too
    notes = page.locator("#chat .thought-group .title").all_inner_texts()
    assert len(notes) == 2 and notes[1].startswith("searched for: ")
    assert_healthy(page)
    screenshot(page, f"{name}-after-reload.png")


def test_uploads_report_file_by_file_in_the_apps_words_and_the_chat_fits_the_library(
    browser, tiny_models, tmp_path
):
    """Items 10, 12, 13, at both sizes."""
    long_name = tmp_path / "pdfjs__tracemonkey_extended_name.pdf"
    shutil.copy(SAMPLES / "expense_form.pdf", long_name)
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ a program")
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_MAX_NEW_TOKENS": "16"}
    with running_app(env, log=tmp_path / "server.log") as url:
        desk = open_app(browser, url, DESKTOP)
        phone = open_app(browser, url, PHONE)
        for page in (desk, phone):  # nothing to try yet: no examples, a hint to add documents
            assert not page.locator("#examples").is_visible()
            assert "Add documents" in page.inner_text("#chat")

        # Each file's line and row as soon as it is done; an unread type refused in one line.
        files = [SAMPLES / "annual_report.pdf", long_name, program]
        desk.set_input_files("#files input[type=file]", [str(f) for f in files])
        seen = []
        for _ in range(600):
            seen.append((desk.inner_text("#index-status"), desk.inner_text("#documents")))
            if "setup.exe" in seen[-1][0]:
                break
            desk.wait_for_timeout(50)
        early = [
            (status, table)
            for status, table in seen
            if "annual_report.pdf: indexed" in status and f"{long_name.name}: indexed" not in status
        ]
        assert early and any("annual_report.pdf" in table for _, table in early), seen[-1]
        wait_for_status(desk, "setup.exe: refused: not a type this app reads")
        assert "Error" not in " ".join(desk.locator(".toast-body").all_inner_texts())
        phone.set_input_files("#files input[type=file]", str(program))
        wait_for_status(phone, "setup.exe: refused: not a type this app reads")
        assert phone.locator(".toast-body").count() == 0

        for name, page in (("desktop", desk), ("phone", phone)):
            page.reload()
            page.wait_for_selector("#q textarea")
            page.wait_for_function(
                "n => document.querySelector('#documents')?.innerText.includes(n)",
                arg="annual_report",
            )
            check_the_table(page, long_name.name)
            # The examples for the samples there are (the report's, not the slides'); a hint
            # to ask, not to add documents.
            page.wait_for_selector("#examples", state="visible")
            examples = page.inner_text("#examples")
            assert "What was the revenue in 2024?" in examples and "Falcon" not in examples
            assert "Add documents" not in page.inner_text("#chat")
            # New chat keeps a question being typed.
            ask(page, "What was the revenue in 2024?", 1)
            page.fill("#q textarea", "half a quest")
            page.click("#new-chat")
            page.wait_for_function("() => !document.querySelector('#chat .user-row')")
            assert page.input_value("#q textarea") == "half a quest"
            assert "Add documents" not in page.inner_text("#chat")
            assert_healthy(page)
            screenshot(page, f"{name}-uploads.png", full_page=True)


def check_the_table(page, long_name: str) -> None:
    """Names wrap only after their separators; no column of ids; no header cut."""
    assert [h.strip() for h in page.locator("#documents th").all_inner_texts()] == [
        "Document",
        "Pages",
        "Tags",
    ]
    assert clipped(page, "#documents th") == []
    lines = page.evaluate(LINES_OF_CELL, long_name)
    assert len(lines) > 1, lines  # the name is too long for one line in the panel
    assert "".join(lines) == long_name
    assert all(line[-1] in "_.-" for line in lines[:-1]), lines


# The lines a table cell's text is drawn on (each character's top says which line it is on).
LINES_OF_CELL = """name => {
  const cell = [...document.querySelectorAll('#documents [role=gridcell]')]
    .find(td => td.innerText.replace(/\\s/g, '') === name);
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  const lines = new Map();
  while (walker.nextNode()) {
    const node = walker.currentNode;
    for (let i = 0; i < node.length; i++) {
      if (!node.data[i].trim()) continue;
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const top = Math.round(range.getBoundingClientRect().top);
      lines.set(top, (lines.get(top) || '') + node.data[i]);
    }
  }
  return [...lines.entries()].sort((a, b) => a[0] - b[0]).map(e => e[1]);
}"""
