"""A person in a real browser (Debian's chromium, driven by Playwright): upload a sample PDF,
ask, watch the answer stream in, see the retrieved pages and a heatmap."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.conftest import SAMPLES
from tests.servers import running_app
from tests.test_ui import app_env

pytestmark = pytest.mark.models

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Keep chromium off the network: this machine has none, and the test needs only localhost.
NO_OUTSIDE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[NO_OUTSIDE])
        yield browser
        browser.close()


def broken_images(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(
        f"{selector} img",
        "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)",
    )


def test_upload_ask_and_see_pages_and_heatmap(browser, tiny_models, tmp_path):
    env = app_env(tiny_models, tmp_path / "data")
    env["RAG_MAX_NEW_TOKENS"] = "48"
    with running_app(env, log=tmp_path / "server.log") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#q textarea")

        page.set_input_files("#files input[type=file]", str(SAMPLES / "annual_report.pdf"))
        page.wait_for_function(
            "() => document.querySelector('#index-status')?.innerText.includes('indexed 3 pages')",
            timeout=120_000,
        )
        page.wait_for_function(
            "() => document.querySelector('#documents')?.innerText.includes('annual_report.pdf')"
        )

        page.fill("#q textarea", "What was the revenue in 2024?")
        page.click("#ask")
        answer = "#answer [data-testid=markdown]"
        lengths = []
        page.wait_for_selector("#pages img", timeout=120_000)
        for _ in range(200):  # sample the answer while it streams
            lengths.append(len(page.inner_text(answer)))
            if page.locator("#cited input").count() > 0:
                break
            page.wait_for_timeout(50)
        page.wait_for_selector("#cited input", timeout=120_000)
        assert len(page.inner_text(answer)) > 0
        assert lengths == sorted(lengths)  # text only ever grows

        page.wait_for_selector("#heatmap img")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#pages img, #heatmap img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        assert page.locator("#pages img").count() >= 2
        assert broken_images(page, "#pages") == [] and broken_images(page, "#heatmap") == []

        # A cited page is a link to that page: clicking it selects it and shows its heatmap.
        before = page.get_attribute("#heatmap img", "src")
        page.locator("#cited label").nth(1).click()
        page.wait_for_function(
            f"() => document.querySelector('#heatmap img')?.src !== {before!r}", timeout=60_000
        )
        cited = page.locator("#cited label").nth(1).inner_text().strip()
        page.wait_for_selector("#pages .thumbnail-item.selected")
        assert page.inner_text("#pages .thumbnail-item.selected").startswith(cited)

        first_word = page.locator("#tokens label").nth(1)
        before = page.get_attribute("#heatmap img", "src")
        first_word.click()
        page.wait_for_function(
            f"() => document.querySelector('#heatmap img')?.src !== {before!r}", timeout=60_000
        )
        page.wait_for_function(
            "() => [...document.querySelectorAll('#heatmap img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        assert broken_images(page, "#heatmap") == []

        shot = tmp_path / "app.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000


def test_a_public_session_is_deleted_when_its_tab_closes(browser, tiny_models, tmp_path):
    data = tmp_path / "data"
    with running_app(app_env(tiny_models, data), "--public", log=tmp_path / "server.log") as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#limits")  # public mode shows its upload limits
        page.set_input_files("#files input[type=file]", str(SAMPLES / "expense_form.pdf"))
        page.wait_for_function(
            "() => document.querySelector('#index-status')?.innerText.includes('indexed 1 pages')",
            timeout=120_000,
        )
        sessions = data / "collections"
        (session,) = sessions.iterdir()
        assert list((session / "index" / "docs").iterdir())
        page.close()
        for _ in range(120):  # the server notices the closed tab within a few seconds
            if not session.exists():
                break
            time.sleep(0.5)
        assert not session.exists()
