"""Evidence boxes in a real browser (issue 32, part 3): the page view's "Evidence" switch,
beside the heatmap and word-frame switches, draws the page's evidence boxes over it (green),
and takes them away again; no element is left in an error state, every image loads.
The screenshot is saved as ``test-artifacts/evidence.png``."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from rag.view.overlay import EVIDENCE_LINE
from tests.helpers.browser import (
    DESKTOP,
    ask,
    assert_healthy,
    box,
    chromium,
    clipped,
    open_app,
    overlap,
    screenshot,
    upload,
)
from tests.helpers.servers import app_env, running_app

pytestmark = [pytest.mark.models, pytest.mark.browser]

CONTROLS = ["#prev", "#next", "#overlay label", "#boxes label", "#evidence label", "#opacity"]


def shown_image(page) -> Image.Image:
    """The page view's image as the browser was served it."""
    response = page.request.get(page.get_attribute("#heatmap img", "src"))
    assert response.ok
    return Image.open(io.BytesIO(response.body())).convert("RGB")


def green(image: Image.Image) -> int:
    """How many pixels are the evidence frame's own green."""
    return sum(1 for pixel in image.getdata() if pixel == EVIDENCE_LINE[:3])


def toggle(page, selector: str) -> None:
    """Click a switch and wait for the page to be drawn again."""
    src = page.get_attribute("#heatmap img", "src")
    page.click(selector)
    page.wait_for_function(f"() => document.querySelector('#heatmap img')?.src !== {src!r}")
    page.wait_for_timeout(300)


def test_the_evidence_switch_draws_the_boxes_over_the_page(tiny_models, tmp_path):
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_MAX_NEW_TOKENS": "16"}
    with chromium() as browser, running_app(env, log=tmp_path / "server.log") as url:
        page = open_app(browser, url, DESKTOP)
        upload(page, "annual_report.pdf")
        ask(page, "What was the revenue in 2024?", 1)
        assert not page.is_checked("#evidence input")  # off until asked for
        before = shown_image(page)
        assert green(before) == 0

        toggle(page, "#evidence label")
        assert page.is_checked("#evidence input")
        drawn = shown_image(page)
        assert drawn.size == before.size and green(drawn) > 50  # frames, not a stray pixel
        boxes = {c: box(page, c) for c in CONTROLS}
        for i, a in enumerate(CONTROLS):
            for b in CONTROLS[i + 1 :]:
                assert not overlap(boxes[a], boxes[b]), (a, b)
        assert clipped(page, "#evidence, #evidence label") == []
        assert_healthy(page)
        page.locator("#heatmap").scroll_into_view_if_needed()
        screenshot(page, "evidence.png")

        toggle(page, "#overlay label")  # the heatmap off: the boxes stay, over the page alone
        assert green(shown_image(page)) > 50
        toggle(page, "#evidence label")
        assert green(shown_image(page)) == 0
        assert_healthy(page)


def test_with_a_reranker_the_page_title_shows_its_score_beside_the_others(tiny_models, tmp_path):
    """Issue 32, part 2, in the browser: RAG_RERANKER set, each page's title gives the
    reranker's score beside the picture's and the words'."""
    env = {
        **app_env(tiny_models, tmp_path / "data"),
        "RAG_MAX_NEW_TOKENS": "16",
        "RAG_RERANKER": f"text:{tiny_models / 'xlm_roberta_reranker'}",
    }
    with chromium() as browser, running_app(env, log=tmp_path / "server.log") as url:
        page = open_app(browser, url, DESKTOP)
        upload(page, "annual_report.pdf")
        ask(page, "What was the revenue in 2024?", 1)
        title = page.inner_text("#page-title")
        assert "reranker" in title and "picture" in title, title
        assert_healthy(page)
        page.locator("#page-title").scroll_into_view_if_needed()
        screenshot(page, "reranked-page.png")
