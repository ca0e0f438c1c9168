"""A person's browser for the UI tests: Debian's chromium through Playwright, kept off the
network, on a desktop's screen (1400 x 1000) or a phone's (390 x 844); the steps they take
(upload, ask) and what every step must leave (no error badge, every image loaded), and where
things are on the screen."""

from __future__ import annotations

import shutil
from contextlib import contextmanager

from tests.helpers import ROOT, SAMPLES

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Keep chromium off the network: this machine has none, and the test needs only localhost.
NO_OUTSIDE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
TITLE = "#page-title"
ANSWERS = "#chat .bot-row:not(:has(.thought-group)) .message-content"  # not the notes
ZERO_WIDTH = "\u200b"  # where thumbnails' captions may wrap


@contextmanager
def chromium():
    """A launched chromium (Playwright's ``Browser``), closed on exit."""
    import pytest

    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[NO_OUTSIDE])
        try:
            yield browser
        finally:
            browser.close()


def open_app(browser, url: str, size: dict, console: list | None = None):
    """A new tab on ``url`` at ``size``, once the app has drawn its question box; the
    console's warnings and errors go to ``console``."""
    page = browser.new_page(viewport=size)
    if console is not None:
        page.on(
            "console",
            lambda m: console.append(m.text) if m.type in {"warning", "error"} else None,
        )
    page.goto(url)
    page.wait_for_selector("#q textarea")
    return page


def assert_healthy(page) -> None:
    """No error badge anywhere, and every image loaded (each scrolled into view first: the
    gallery's thumbnails load lazily)."""
    for image in page.locator("img").all():
        if image.is_visible():
            image.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
    broken = page.eval_on_selector_all(
        "img", "imgs => imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src)"
    )
    badges = page.eval_on_selector_all(
        ".error, [data-testid=status-tracker] .error", "els => els.map(e => e.innerText)"
    )
    assert broken == [] and badges == []


def toasts(page) -> str:
    return " | ".join(page.locator(".toast-body").all_inner_texts())


def wait_for_toast(page, words: str) -> None:
    page.wait_for_function(
        "w => [...document.querySelectorAll('.toast-body')].some(t => t.innerText.includes(w))",
        arg=words,
        timeout=30_000,
    )


def close_toasts(page) -> None:
    for button in page.locator(".toast-close").all():
        if button.is_visible():
            button.click()


def wait_for_status(page, words: str, timeout: float = 120_000) -> None:
    page.wait_for_function(
        "w => document.querySelector('#index-status')?.innerText.includes(w)",
        arg=words,
        timeout=timeout,
    )


def upload(page, *paths) -> None:
    """Drop files (sample names, or paths) in the upload box; wait until each is indexed."""
    files = [str(SAMPLES / p) if isinstance(p, str) else str(p) for p in paths]
    page.set_input_files("#files input[type=file]", files)
    for path in paths:
        name = path if isinstance(path, str) else path.name
        wait_for_status(page, f"{name}: indexed")


def ask(page, question: str, turn: int) -> None:
    """Ask and wait for the answer to finish: the page view shows the turn's page, the chat
    has its answer and Stop is off again."""
    page.fill("#q textarea", question)
    page.click("#ask")
    page.wait_for_function(
        "t => document.querySelector('#page-title')?.innerText.includes('question ' + t)",
        arg=turn,
        timeout=120_000,
    )
    page.wait_for_function(
        "t => document.querySelectorAll('#chat .user-row').length === t"
        " && !document.querySelector('#chat [aria-busy=true]')"
        " && document.querySelector('#stop').disabled",
        arg=turn,
        timeout=120_000,
    )
    page.wait_for_timeout(300)  # the last streamed update settles


def choose(page, box: str, text: str) -> None:
    """Pick the option showing ``text`` in the dropdown ``box`` (an elem_id selector)."""
    page.click(f"{box} input")
    page.locator("ul[role=listbox] li", has_text=text).first.click()
    page.keyboard.press("Escape")


def box(page, selector: str) -> dict:
    """The element's box in the viewport (x, y, width, height)."""
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"] - 1
        and b["x"] < a["x"] + a["width"] - 1
        and a["y"] < b["y"] + b["height"] - 1
        and b["y"] < a["y"] + a["height"] - 1
    )


def clipped(page, selector: str) -> list[str]:
    """The texts of the elements of ``selector`` that their box cuts (or hides behind '…')."""
    return page.eval_on_selector_all(
        selector,
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1"
        " || e.scrollHeight > e.clientHeight + 1).map(e => e.innerText)",
    )


def screenshot(page, name: str, *, full_page: bool = False) -> None:
    """Saved in test-artifacts/ (git-ignored), to be looked at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
