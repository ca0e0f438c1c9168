"""Two people of a team in real browsers (Debian's chromium, through Playwright), each in their
own browser context: one logs in, uploads a PDF readable by them only, asks, opens a cited
page and sees whose the document is; the other logs in and sees none of it, not even through
the first one's page URLs. After every step no element shows an error badge and every image
has loaded. Screenshots are saved in ``test-artifacts/``.
"""

from __future__ import annotations

import pytest

from rag import Pipeline, Settings
from tests.helpers import SAMPLES, pdfs
from tests.helpers.browser import DESKTOP, TITLE, ask, assert_healthy, chromium, screenshot, upload
from tests.helpers.servers import app_env, running_app

pytestmark = [pytest.mark.models, pytest.mark.browser]

PASSWORDS = {"ana": "correct-horse-battery-1", "ben": "correct-horse-battery-2"}
SHARED = "everyone_guide.pdf"  # indexed beforehand by an admin, for everyone
SYNCED = "synced_form.pdf"  # in a folder the app keeps in sync (RAG_SYNC), for everyone


def log_in(browser, url: str, name: str):
    """A new browser context (its own cookies) logged in as ``name``, on the app."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(url)
    page.fill("input[data-testid=textbox]", name)
    page.fill("input[type=password]", PASSWORDS[name])
    page.click("button:has-text('Login')")
    page.wait_for_selector("#q textarea", timeout=60_000)
    page.wait_for_function(
        "n => document.querySelector('#documents')?.innerText.includes(n)", arg=SHARED
    )
    return context, page


def table_rows(page, columns: int = 4) -> list[list[str]]:
    """The documents table's rows, as read."""
    cells = page.eval_on_selector_all(
        "#documents [role=gridcell]", "cells => cells.map(c => c.innerText.trim())"
    )
    return [cells[i : i + columns] for i in range(0, len(cells), columns)]


def test_a_private_upload_is_its_owners_alone(tiny_models, tmp_path):
    (copy,) = pdfs.distinct_copies(tmp_path / "share", 1, SAMPLES / "expense_form.pdf")
    copy.rename(tmp_path / "share" / SYNCED)
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_SYNC": str(tmp_path / "share")}
    pipeline = Pipeline(Settings.from_env(env))
    pipeline.people.add("ana", PASSWORDS["ana"], ["red"])
    pipeline.people.add("ben", PASSWORDS["ben"], ["green"])
    added = pipeline.add_file(SAMPLES / "expense_form.pdf", name=SHARED, visibility="everyone")
    assert added.status == "indexed"
    with running_app(env, log=tmp_path / "server.log") as url, chromium() as browser:
        ana_context, ana = log_in(browser, url, "ana")
        # The synced folder's last sync, under the table (read again every few seconds).
        ana.wait_for_function(
            "() => /Last sync .*1 added/.test(document.querySelector('#sync-status').innerText)",
            timeout=60_000,
        )
        # Uploads are hers alone unless she says otherwise: her groups are offered too.
        assert ana.input_value("#upload-visibility input") == "Only me (and admins)"
        ana.click("#upload-visibility input")
        offered = ana.locator("ul[role=listbox] li").all_inner_texts()
        offered = [o.split("\n")[-1].strip() for o in offered]  # without the chosen one's ✓
        assert offered == ["Only me (and admins)", "Everyone", "Group red"]
        ana.keyboard.press("Escape")
        upload(ana, "annual_report.pdf")
        rows = {row[0]: row for row in table_rows(ana)}
        assert rows["annual_report.pdf"][2:] == ["ana", "owner only"]
        assert rows[SHARED][2:] == ["—", "everyone"]
        ask(ana, "What was the revenue in 2024?", 1)
        # The note of what was found holds the citations; one opens its page.
        ana.locator("#chat .thought-group .title").first.click()
        link = ana.locator("#chat a.cite", has_text="annual_report.pdf").first
        link.wait_for()
        number = link.inner_text().rstrip("]").rsplit("p.", 1)[1]
        link.click()
        ana.wait_for_function(
            "n => document.querySelector('#page-title').innerText.includes('page ' + n)",
            arg=number,
        )
        assert "annual_report.pdf" in ana.inner_text(TITLE)
        # Her document, chosen: she may change who reads it.
        ana.click("#delete-choice input")
        ana.locator("ul[role=listbox] li", has_text="annual_report.pdf").first.click()
        ana.keyboard.press("Escape")
        ana.wait_for_function("() => document.querySelector('#share')?.disabled === false")
        assert not ana.locator("#delete").is_disabled()
        assert "owner: ana" in ana.inner_text("#doc-details")
        assert_healthy(ana)
        screenshot(ana, "teams-owner.png", full_page=True)
        pictures = ana.eval_on_selector_all(
            "#heatmap img, #pages img, #page-file a",
            "els => els.map(e => e.src || e.href).filter(u => u.includes('/file='))",
        )
        assert len(pictures) >= 3 and all(ana_context.request.get(u).ok for u in pictures)

        ben_context, ben = log_in(browser, url, "ben")
        assert sorted(row[0] for row in table_rows(ben)) == [SHARED, SYNCED]
        assert "annual_report" not in ben.inner_text("#docs")
        ben.click("#scope input")
        scopes = " ".join(ben.locator("ul[role=listbox] li").all_inner_texts())
        assert SHARED in scopes and "annual_report" not in scopes
        ben.keyboard.press("Escape")
        ask(ben, "What was the revenue in 2024?", 1)
        assert "annual_report" not in ben.inner_text("#chat")
        assert "annual_report" not in ben.inner_text("#page-view")
        # Not his: the document everyone reads is not his to share.
        ben.click("#delete-choice input")
        ben.locator("ul[role=listbox] li", has_text=SHARED).first.click()
        ben.keyboard.press("Escape")
        ben.wait_for_function("() => document.querySelector('#doc-details')?.innerText")
        assert ben.locator("#share").is_disabled()
        # Nor his to delete (nor to retag: its button, in the folded tags, goes the same way).
        ben.wait_for_function("() => document.querySelector('#delete')?.disabled === true")
        # Ana's page URLs, in his browser: not there.
        assert all(ben_context.request.get(u).status == 404 for u in pictures)
        assert_healthy(ben)
        screenshot(ben, "teams-other.png", full_page=True)
        assert all(ana_context.request.get(u).ok for u in pictures)  # still hers
        ben_context.close()
        ana_context.close()
