"""A person in a real browser (Debian's chromium, driven by Playwright): upload, ask, follow up,
open cited pages, stop an answer, start over, scope to one document, delete a document that
is in the results; on a desktop screen and on a phone's.

After every step that can go wrong, no element may be left showing an error badge, and every
image on the page must have loaded. Screenshots are saved in ``test-artifacts/``.
"""

from __future__ import annotations

import pytest

from rag.profiles import PROFILES
from tests.helpers import SAMPLES
from tests.helpers.browser import (
    ANSWERS,
    DESKTOP,
    PHONE,
    TITLE,
    ZERO_WIDTH,
    ask,
    assert_healthy,
    chromium,
    screenshot,
    upload,
    wait_for_toast,
)
from tests.helpers.processes import wait_until
from tests.helpers.servers import app_env, running_app

pytestmark = [pytest.mark.models, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def caption(page, selector: str) -> str:
    """A thumbnail's caption as read (without the places it may wrap)."""
    return page.inner_text(selector).replace(ZERO_WIDTH, "")


def test_a_conversation_with_follow_ups_citations_and_the_page_view(browser, tiny_models, tmp_path):
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_MAX_NEW_TOKENS": "24"}
    with running_app(env, log=tmp_path / "server.log") as url:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url)
        page.wait_for_selector("#q textarea")

        # Mistakes first: an empty question, then a question before any document.
        page.click("#ask")
        wait_for_toast(page, "Type a question first")
        page.fill("#q textarea", "What was the revenue?")
        page.click("#ask")
        wait_for_toast(page, "no documents are indexed yet")
        # Kept to retry: given back by the answer's last update, which may follow its toast.
        page.wait_for_function(
            "() => document.querySelector('#q textarea').value === 'What was the revenue?'"
        )
        assert page.locator("#chat .user-row").count() == 0
        assert_healthy(page)

        # One progress bar, in the status line: not over the table or the chooser.
        page.set_input_files("#files input[type=file]", str(SAMPLES / "annual_report.pdf"))
        shown = {"status": 0, "elsewhere": 0}
        for _ in range(400):
            active = "[data-testid=status-tracker]:not(.hide):not(.hidden)"
            shown["status"] += page.locator(f"#index-status {active}").count()
            shown["elsewhere"] += page.locator(
                f"#documents {active}, #delete-choice {active}"
            ).count()
            if "indexed" in page.inner_text("#index-status"):
                break
            page.wait_for_timeout(25)
        assert (
            page.inner_text("#index-status").strip().endswith("annual_report.pdf: indexed, 3 pages")
        )
        assert shown["elsewhere"] == 0

        # The question streams into the chat; the top page comes up with its heatmap.
        page.fill("#q textarea", "What was the revenue in 2024?")
        page.click("#ask")
        lengths = []
        page.wait_for_selector("#chat .bot-row", timeout=120_000)
        for _ in range(200):  # sample the answer while it streams
            texts = page.locator(ANSWERS).all_inner_texts()
            lengths.append(len(texts[-1]) if texts else 0)
            settled = len(lengths) > 3 and lengths[-1] == lengths[-2] == lengths[-3] > 0
            if settled and "question 1" in page.inner_text(TITLE):
                break
            page.wait_for_timeout(50)
        assert lengths == sorted(lengths) and lengths[-1] > 0, lengths  # text only ever grows
        assert "annual_report.pdf — page" in page.inner_text(TITLE)
        words = page.locator("#tokens label").all_inner_texts()
        assert "2024" in [w.strip() for w in words]  # a word, not its four digit tokens
        assert page.locator("#pages img").count() == 3
        fits = page.eval_on_selector_all(
            "#pages img", "i => i.map(x => getComputedStyle(x).objectFit)"
        )
        assert set(fits) == {"contain"}  # whole pages, not cropped

        # A follow-up is searched as a standalone question, shown under the turn.
        ask(page, "and in 2023?", 2)
        notes = page.locator("#chat .thought-group .title").all_inner_texts()
        assert len(notes) == 2 and notes[1].startswith("searched for: ")
        assert notes[0].startswith("searched · within all documents")

        # A citation in the first turn opens that turn's page, not the latest turn's.
        page.locator("#chat .thought-group .title").first.click()
        link = page.locator("#chat a.cite").nth(1)
        link.wait_for()
        cited = link.inner_text()  # "[annual_report.pdf p.N]"
        link.click()
        page.wait_for_function(
            "() => document.querySelector('#page-title').innerText.includes('question 1')"
        )
        number = cited.rstrip("]").rsplit("p.", 1)[1]
        assert f"page {number}" in page.inner_text(TITLE)
        selected = caption(page, "#pages .thumbnail-item.selected")
        assert selected.split("\n")[0].split(" ·")[0] == f"p.{number}"  # the gallery follows

        # The chosen word stays when the page changes; the overlay can be switched off.
        page.locator("#tokens label", has_text="revenue").click()
        page.wait_for_timeout(800)
        before = page.inner_text(TITLE)
        page.click("#next")
        page.wait_for_function(
            f"() => document.querySelector('#page-title').innerText !== {before!r}"
        )
        assert page.locator("#tokens input:checked").get_attribute("value") == "revenue"
        src = page.get_attribute("#heatmap img", "src")
        page.locator("#overlay label").click()
        page.wait_for_function(f"() => document.querySelector('#heatmap img')?.src !== {src!r}")
        assert page.locator("#legend .legend-bar").count() == 1
        # The page's words: a snippet with the question's words marked, and their frames.
        assert page.locator("#snippet strong").count() > 0
        href = page.locator("#page-file a").first.get_attribute("href")  # the page, full size
        response = page.request.get(href)
        assert response.ok and response.headers["content-type"] == "image/png"
        assert href.rsplit("/", 1)[-1].startswith("page-")
        src = page.get_attribute("#heatmap img", "src")
        page.locator("#boxes label").click()
        page.wait_for_function(f"() => document.querySelector('#heatmap img')?.src !== {src!r}")
        assert_healthy(page)
        screenshot(page, "desktop-conversation.png", full_page=True)

        # New chat: an empty conversation; the next question has no history.
        page.click("#new-chat")
        page.wait_for_function("() => !document.querySelector('#chat .user-row')")
        ask(page, "Which product line grew fastest?", 1)
        assert page.locator("#chat .user-row").count() == 1
        assert_healthy(page)


def test_stop_ends_the_answer_at_once_and_frees_the_model(browser, tiny_models, tmp_path):
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_MAX_NEW_TOKENS": "2048"}
    with running_app(env, log=tmp_path / "server.log") as url:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url)
        upload(page, "product_slides.pdf")
        page.fill("#q textarea", "Describe every page in detail.")
        page.click("#ask")
        page.wait_for_function(
            "s => (document.querySelector(s)?.innerText.length || 0) > 5",
            arg=ANSWERS,
            timeout=120_000,
        )
        assert page.locator("#stop").is_enabled()  # while the answer is written
        page.click("#stop")
        page.wait_for_function(
            "() => document.querySelector('#chat').innerText.includes('(stopped)')",
            timeout=30_000,
        )
        stopped = page.locator(ANSWERS).last.inner_text()
        page.wait_for_function("() => document.querySelector('#stop').disabled")
        page.wait_for_timeout(2000)
        assert page.locator(ANSWERS).last.inner_text() == stopped
        # The model is free at once: a second question is answered, and can be stopped too.
        page.fill("#q textarea", "Next steps?")
        page.click("#ask")
        page.wait_for_function(
            "s => (document.querySelectorAll(s)[1]?.innerText.length || 0) > 5",
            arg=ANSWERS,
            timeout=60_000,
        )
        assert page.locator("#chat .user-row").count() == 2
        page.click("#stop")
        page.wait_for_function(
            "s => document.querySelectorAll(s)[1]?.innerText.includes('(stopped)')",
            arg=ANSWERS,
            timeout=30_000,
        )
        assert_healthy(page)


def test_deleting_a_document_in_the_results_then_opening_its_page(browser, tiny_models, tmp_path):
    log = tmp_path / "server.log"
    with running_app(app_env(tiny_models, tmp_path / "data"), log=log) as url:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url)
        upload(page, "annual_report.pdf", "expense_form.pdf")
        # Within one document: every retrieved page is that document's.
        page.click("#scope input")
        page.locator("ul[role=listbox] li", has_text="annual_report.pdf").click()
        page.keyboard.press("Escape")
        ask(page, "What was the revenue in 2024?", 1)
        captions = page.locator("#pages .thumbnail-item").all_inner_texts()
        captions = [c.replace(ZERO_WIDTH, "").strip() for c in captions]
        assert captions and all(c.endswith("annual_report.pdf") for c in captions)
        assert "within annual_report.pdf" in page.inner_text("#chat .thought-group .title")

        # Another user of the library: the chat is not shared; they delete the document,
        # after the confirmation names it.
        other = browser.new_page(viewport=DESKTOP)
        other.goto(url)
        other.wait_for_selector("#q textarea")
        other.wait_for_function(
            "() => document.querySelector('#documents')?.innerText.includes('annual_report')"
        )
        assert other.locator("#chat .user-row").count() == 0
        other.click("#delete-choice input")
        other.locator("ul[role=listbox] li", has_text="annual_report.pdf").click()
        other.click("#delete")
        other.wait_for_selector("#confirm-delete", state="visible")
        assert "annual_report.pdf" in other.inner_text("#confirm-delete")
        other.click("#really-delete")
        other.wait_for_function(
            "() => document.querySelector('#index-status').innerText.includes('Deleted')"
        )
        assert "annual_report.pdf" not in other.inner_text("#documents")
        assert_healthy(other)

        # Its citation, then its thumbnail: a toast names it each time; nothing breaks.
        page.locator("#chat .thought-group .title").first.click()
        page.locator("#chat a.cite").first.click()
        wait_for_toast(page, "annual_report.pdf has been deleted since this answer")
        page.locator(".toast-body .toast-close, .toast-close").first.click()
        shown = page.inner_text(TITLE)
        page.locator("#pages .thumbnail-item").nth(1).click()
        wait_for_toast(page, "annual_report.pdf has been deleted since this answer")
        page.wait_for_timeout(500)
        number = shown.split(" — page ")[1].split("\n")[0].strip()
        assert page.inner_text(TITLE) == shown  # the page shown stays, and stays selected
        selected = caption(page, "#pages .thumbnail-item.selected")
        assert selected.split("\n")[0].split(" ·")[0] == f"p.{number}"
        page.click("#next")
        page.wait_for_timeout(1000)
        assert_healthy(page)
        screenshot(page, "desktop-after-delete.png", full_page=True)
    assert "Traceback" not in log.read_text() and "DocumentNotFoundError" not in log.read_text()


def test_on_a_phone_the_question_and_the_latest_answer_are_on_the_first_screen(
    browser, tiny_models, tmp_path
):
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_MAX_NEW_TOKENS": "24"}
    with running_app(env, log=tmp_path / "server.log") as url:
        page = browser.new_page(viewport=PHONE)
        page.goto(url)
        page.wait_for_selector("#q textarea")
        box = page.locator("#q textarea").bounding_box()
        assert box["y"] + box["height"] <= PHONE["height"]
        upload(page, "annual_report.pdf")
        page.evaluate("() => window.scrollTo(0, 0)")
        ask(page, "What was the revenue in 2024?", 1)
        page.evaluate("() => window.scrollTo(0, 0)")
        answer = page.locator(ANSWERS).last.bounding_box()
        assert answer is not None and answer["y"] < PHONE["height"]
        assert page.locator("#docs").bounding_box()["y"] > box["y"]  # documents come after
        assert_healthy(page)
        screenshot(page, "phone.png", full_page=True)


def test_the_documents_table_fits_its_panel(browser, tiny_models, tmp_path):
    with running_app(app_env(tiny_models, tmp_path / "data"), log=tmp_path / "server.log") as url:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url)
        upload(page, "expense_form.pdf")
        page.wait_for_function(
            "() => document.querySelector('#documents')?.innerText.includes('expense_form.pdf')"
        )
        panel = page.locator("#documents").bounding_box()
        headers = page.locator("#documents th")
        heights = set()
        for i in range(headers.count()):
            cell = headers.nth(i).bounding_box()
            assert cell["x"] + cell["width"] <= panel["x"] + panel["width"] + 1
            heights.add(round(cell["height"]))
        assert len(heights) == 1  # no header wraps ("Pa/ge/s")
        screenshot(page, "desktop-documents.png", full_page=True)


def test_missing_models_show_a_banner_at_start(browser, tmp_path):
    env = {
        "RAG_DATA_DIR": str(tmp_path / "data"),
        "RAG_RETRIEVER": str(tmp_path / "no-model"),
        "RAG_PROFILE": "cpu",  # a free CPU Space's models
    }
    log = tmp_path / "server.log"
    with running_app(env, log=log) as url:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url)
        page.wait_for_selector("#banner", state="visible")
        banner = page.inner_text("#banner")
        assert "no-model" in banner and "RAG_RETRIEVER" in banner
        assert PROFILES["cpu"]["generator"] in banner and "RAG_GENERATOR" in banner
        # An upload cannot be encoded: the status line says why; nothing shows an error.
        page.set_input_files("#files input[type=file]", str(SAMPLES / "expense_form.pdf"))
        page.wait_for_function(
            "() => document.querySelector('#index-status')?.innerText.includes('not added')",
            timeout=60_000,
        )
        assert "no-model" in page.inner_text("#index-status")
        assert_healthy(page)
    lines = [line for line in log.read_text().splitlines() if "no-model" in line]
    assert len(lines) == 1 and "RAG_RETRIEVER" in lines[0]


def test_a_public_session_is_deleted_when_its_tab_closes(browser, tiny_models, tmp_path):
    data = tmp_path / "data"
    with running_app(app_env(tiny_models, data), "--public", log=tmp_path / "server.log") as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#limits")  # public mode shows its upload limits
        upload(page, "expense_form.pdf")
        sessions = data / "collections"
        (session,) = sessions.iterdir()
        assert list((session / "index" / "docs").iterdir())
        page.close()
        # the server notices the closed tab within a few seconds
        wait_until(lambda: not session.exists(), "the closed tab's session deleted", limit_s=60)


def test_a_deck_and_a_photo_are_added_and_the_page_view_says_slide(browser, tiny_models, tmp_path):
    from tests.helpers import images, officefiles

    deck = officefiles.pptx(tmp_path / "roadmap.pptx")
    photo = images.photo(tmp_path / "whiteboard.png")
    with running_app(app_env(tiny_models, tmp_path / "data"), log=tmp_path / "server.log") as url:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(url)
        assert "PowerPoint" in page.locator("#types").inner_text()  # the types it takes
        page.set_input_files("#files input[type=file]", [str(deck), str(photo)])
        for name in ("roadmap.pptx: indexed, 3 pages", "whiteboard.png: indexed, 1 page"):
            page.wait_for_function(
                "n => document.querySelector('#index-status')?.innerText.includes(n)",
                arg=name,
                timeout=120_000,
            )
        ask(page, "Which slide has the Osprey budget?", 1)
        titles = page.locator("#page-title").inner_text()
        assert "roadmap.pptx — slide" in titles or "whiteboard.png — page 1" in titles
        captions = " ".join(page.locator("#pages").all_inner_texts())
        assert "slide " in captions
        assert_healthy(page)
        screenshot(page, "desktop-deck-and-photo.png", full_page=True)
