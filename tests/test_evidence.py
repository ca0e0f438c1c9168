"""Evidence boxes (issue 32, part 3): on hand-built maps and pages whose right boxes are known,
on a processor's own (non-square) patch grid, the overlap arithmetic for the eval report, and
the CLI's and the API's shapes on tiny models."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image

import app
from rag.config import Settings
from rag.models.retriever import Retriever
from rag.pipeline import Pipeline
from rag.view.evidence import (
    WORDS_WEIGHT,
    EvidenceBox,
    box_overlap,
    cells_box,
    evidence_boxes,
    reference_boxes,
)
from rag.view.heatmaps import QueryToken, QueryWord, page_maps, word_grid
from rag.view.overlay import EVIDENCE_LINE
from rag.words import PageText, Word
from tests.helpers import SAMPLES
from tests.helpers.servers import app_env, running_app

QUESTION = "What was the revenue in 2024?"
NO_WORDS = PageText(1)


def blob(shape: tuple[int, int], *cells: tuple[slice, slice]) -> np.ndarray:
    """An (n_y, n_x) map: 0 everywhere, 1 on each of ``cells`` (rows, cols)."""
    grid = np.zeros(shape)
    for rows, cols in cells:
        grid[rows, cols] = 1.0
    return grid


def test_a_words_strong_patches_make_its_box():
    grid = blob((10, 8), (slice(2, 4), slice(3, 6)))  # rows 2-3, columns 3-5
    (found,) = evidence_boxes({"revenue": grid}, NO_WORDS)
    assert found.box == pytest.approx((3 / 8, 2 / 10, 6 / 8, 4 / 10))
    assert found.words == ("revenue",) and found.source == "picture"
    assert found.score == pytest.approx(1 - WORDS_WEIGHT)  # the whole picture half


def test_two_separate_blobs_make_two_boxes_and_weaker_patches_rank_lower():
    grid = blob((12, 12), (slice(1, 3), slice(1, 3)), (slice(8, 10), slice(6, 11)))
    grid[8:10, 6:11] = 0.9  # the second blob a little weaker
    first, second = evidence_boxes({"revenue": grid}, NO_WORDS)
    assert first.box == pytest.approx((1 / 12, 1 / 12, 3 / 12, 3 / 12))
    assert second.box == pytest.approx((6 / 12, 8 / 12, 11 / 12, 10 / 12))
    assert first.score > second.score > 0


def test_a_matching_page_word_snaps_the_box_to_it():
    grid = blob((10, 10), (slice(4, 6), slice(2, 5)))  # x 0.2-0.5, y 0.4-0.6
    words = (
        Word("Revenue:", (0.22, 0.45, 0.41, 0.52)),  # inside the blob: the box becomes it
        Word("Revenue", (0.7, 0.9, 0.8, 0.95)),  # the word elsewhere: a box of its own
        Word("Costs", (0.5, 0.45, 0.6, 0.52)),  # beside it, but not asked about
    )
    snapped, alone = evidence_boxes({"revenue": grid}, PageText(1, words, "layer"))
    assert snapped == EvidenceBox((0.22, 0.45, 0.41, 0.52), ("revenue",), 1.0, "both")
    assert alone == EvidenceBox((0.7, 0.9, 0.8, 0.95), ("revenue",), WORDS_WEIGHT, "words")


def test_matched_words_side_by_side_on_a_line_make_one_box():
    words = (
        Word("revenue", (0.1, 0.2, 0.2, 0.22)),
        Word("in", (0.21, 0.2, 0.23, 0.22)),
        Word("2024", (0.24, 0.2, 0.3, 0.22)),
    )
    flat = {"revenue": np.zeros((4, 4)), "2024": np.zeros((4, 4))}
    (found,) = evidence_boxes(flat, PageText(1, words))
    assert found.box == pytest.approx((0.1, 0.2, 0.3, 0.22))
    assert set(found.words) == {"revenue", "2024"} and found.source == "words"


def test_no_matching_content_gives_no_box():
    words = (Word("Costs", (0.1, 0.1, 0.2, 0.12)),)
    assert evidence_boxes({"revenue": np.zeros((6, 6))}, PageText(1, words)) == []
    assert evidence_boxes({}, PageText(1, words)) == []  # no content word asked
    noise = np.random.default_rng(0).normal(size=(32, 24))  # matches nothing in particular
    assert evidence_boxes({"revenue": noise}, NO_WORDS) == []
    spread = blob((4, 4), (slice(0, 2), slice(0, 4)))  # half the page: locates nothing
    assert evidence_boxes({"revenue": spread}, NO_WORDS) == []


def test_boxes_stay_within_the_page_and_are_few():
    grid = np.zeros((20, 20))
    for i in range(0, 20, 4):
        grid[i, i] = 1.0  # five separate patches
    words = tuple(Word("revenue", (0.1 * i, 0.95, 0.1 * i + 0.05, 1.02)) for i in range(5))
    found = evidence_boxes({"revenue": grid}, PageText(1, words), limit=3)
    assert len(found) == 3
    assert all(0 <= v <= 1 for e in found for v in e.box)


def test_box_overlap_is_the_mean_best_iou_over_the_reference_boxes():
    assert box_overlap([(0, 0, 1, 1)], [(0, 0, 1, 1)]) == 1.0
    assert box_overlap([(0, 0, 1, 1)], [(0, 0, 2, 2)]) == 0.25
    # Two references: one found exactly, one half covered (IoU 1/2): mean 3/4.
    reference = [(0, 0, 1, 1), (2, 0, 4, 1)]
    assert box_overlap([(0, 0, 1, 1), (2, 0, 3, 1)], reference) == 0.75
    assert box_overlap([(5, 5, 6, 6)], reference) == 0.0
    assert box_overlap([], reference) == 0.0
    with pytest.raises(ValueError, match="no reference boxes"):
        box_overlap([(0, 0, 1, 1)], [])


def test_reference_boxes_read_pixels_fractions_and_widths():
    size = (200, 100)
    assert reference_boxes({"bounding_boxes": [[20, 10, 120, 60]]}, size) == [(0.1, 0.1, 0.6, 0.6)]
    record = {"bboxes": [{"x": 20, "y": 10, "width": 100, "height": 50}]}
    assert reference_boxes(record, size) == [(0.1, 0.1, 0.6, 0.6)]
    assert reference_boxes(
        {"bounding_boxes": {"x_min": 0.1, "y_min": 0.2, "x_max": 0.3, "y_max": 0.4}}
    ) == [(0.1, 0.2, 0.3, 0.4)]
    assert reference_boxes({"query": "no boxes"}) == []
    with pytest.raises(ValueError, match="in pixels"):
        reference_boxes({"bounding_boxes": [[20, 10, 120, 60]]})


@pytest.fixture(scope="module")
def retriever(tiny_models) -> Retriever:
    return Retriever.load(Settings(retriever=str(tiny_models / "colqwen2")))


@pytest.mark.models
@pytest.mark.parametrize("size", [(595, 842), (842, 595)], ids=["portrait", "landscape"])
def test_the_box_follows_the_processors_grid(retriever, size):
    """A page whose patches in a known block of the processor's (non-square) grid match the
    question's word: the evidence box is that block."""
    image = Image.new("RGB", size, "white")
    grid = retriever.patch_grid(image)
    assert grid.n_x != grid.n_y
    e_match, e_other, e_none = torch.eye(retriever.dim)[:3]
    page = e_other.repeat(grid.mask.shape[0], 1)
    rows, cols = slice(1, 3), slice(grid.n_x - 3, grid.n_x - 1)  # near the top-right corner
    for k, row in enumerate(grid.mask.nonzero().flatten().tolist()):  # row-major patches
        r, c = divmod(k, grid.n_x)
        if rows.start <= r < rows.stop and cols.start <= c < cols.stop:
            page[row] = e_match
    query = torch.stack([e_none, e_match])
    maps = page_maps(retriever, image, page, query, [QueryToken(1, "revenue")])
    word = word_grid(maps, QueryWord("revenue", (1,))).float().numpy()
    assert word.shape == (grid.n_y, grid.n_x)
    (found,) = evidence_boxes({"revenue": word}, NO_WORDS)
    assert found.box == pytest.approx(cells_box(rows, cols, (grid.n_y, grid.n_x)))


@pytest.fixture(scope="module")
def indexed(tiny_models, tmp_path_factory):
    """A data folder with the sample annual report indexed by the tiny ColQwen2."""
    data = tmp_path_factory.mktemp("evidence") / "data"
    settings = Settings(data_dir=data, retriever=str(tiny_models / "colqwen2"), dpi=48)
    Pipeline(settings).add_file(SAMPLES / "annual_report.pdf")
    return settings


@pytest.mark.models
def test_an_answer_gives_boxes_within_the_page_and_draws_them(indexed):
    answer = Pipeline(indexed).ask(QUESTION, 2)
    hit = answer.hits[0]
    found = answer.evidence(hit)
    assert found, "the report's text layer has the question's words"
    assert all(0 <= v <= 1 for e in found for v in e.box)
    assert all(e.box[0] < e.box[2] and e.box[1] < e.box[3] for e in found)
    assert all(set(e.words) <= {"revenue", "2024"} for e in found)
    plain = answer.view(hit, heatmap=False, boxes=False)
    drawn = answer.view(hit, heatmap=False, boxes=False, evidence=True)
    assert plain.size == drawn.size and list(plain.getdata()) != list(drawn.getdata())
    assert EVIDENCE_LINE[:3] in set(drawn.getdata())  # the green frame


@pytest.mark.models
def test_ask_json_has_evidence_only_when_asked(indexed, tiny_models):
    common = [
        f"--data-dir={indexed.data_dir}",
        f"--retriever={tiny_models / 'colqwen2'}",
        f"--generator={tiny_models / 'qwen2_vl'}",
    ]
    common = ["ask", QUESTION, "--json", "--no-answer", "--top-k=2", *common]
    plain, boxed = (json.loads(cli(*common)), json.loads(cli(*common, "--evidence")))
    assert all("evidence" not in hit for hit in plain["hits"])
    for hit in boxed["hits"]:
        for box in hit["evidence"]:
            assert set(box) == {"box", "words", "score", "source"}
            assert len(box["box"]) == 4 and all(0 <= v <= 1 for v in box["box"])
            assert box["source"] in {"words", "picture", "both"} and 0 <= box["score"] <= 1
    assert boxed["hits"][0]["evidence"]
    unboxed = [{k: v for k, v in hit.items() if k != "evidence"} for hit in boxed["hits"]]
    assert unboxed == plain["hits"]  # nothing else changes


def cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert app.main(list(args)) == 0
    return out.getvalue()


@pytest.mark.models
@pytest.mark.processes
def test_the_api_returns_and_draws_evidence_when_asked(tiny_models, tmp_path):
    """/ask(..., evidence=True): the hits gain their boxes (after the pages-only update);
    /page(..., evidence=True) draws them; both unchanged otherwise."""
    env = app_env(tiny_models, tmp_path / "data")
    with running_app(env, log=tmp_path / "server.log") as url:
        client = Client(url, verbose=False)
        client.predict([handle_file(str(SAMPLES / "annual_report.pdf"))], api_name="/index")
        plain = client.predict(QUESTION, top_k=2, max_new_tokens=4, api_name="/ask")
        assert all("evidence" not in hit for hit in plain["hits"])
        job = client.submit(QUESTION, top_k=2, max_new_tokens=4, evidence=True, api_name="/ask")
        updates = [dict(update) for update in job]
        assert all("evidence" not in hit for hit in updates[0]["hits"])  # the pages first
        final = updates[-1]
        assert final["hits"][0]["evidence"]
        for hit in final["hits"]:
            assert all(set(box) == {"box", "words", "score", "source"} for box in hit["evidence"])
        page, _ = client.predict(0, "", False, api_name="/page")
        boxed, _ = client.predict(0, "", False, True, api_name="/page")
        with Image.open(page) as a, Image.open(boxed) as b:
            assert a.size == b.size and EVIDENCE_LINE[:3] in set(b.convert("RGB").getdata())
            assert EVIDENCE_LINE[:3] not in set(a.convert("RGB").getdata())
