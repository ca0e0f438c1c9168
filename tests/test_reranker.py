"""The reranking stage (RAG_RERANKER, ``ask --rerank``): the order follows the reranker's scores,
``top_k`` and ``rerank_depth`` are kept, each hit carries its scores, bad settings and
checkpoints are refused in one line; on the tiny cross-encoder and the tiny MonoQwen-shaped
adapter, end to end. Structure, not content: random weights rank nothing meaningfully."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import app
from rag.config import Settings
from rag.errors import ConfigError, RagError, UnsupportedModelError
from rag.index import Hit
from rag.models.loaded import Models
from rag.models.rerankers import VisualReranker, load_reranker, reorder, yes_no
from rag.pipeline import Pipeline
from tests.helpers import ROOT, SAMPLES

QUESTION = "What was the revenue in 2024?"


def hit(page: int, score: float, **scores) -> Hit:
    return Hit("d1", "report.pdf", page, score, Path(f"page-{page}.png"), **scores)


# -- the order, on known scores ----------------------------------------------------------------


def test_the_order_follows_the_scores_and_unscored_pages_come_last_in_their_order():
    hits = [hit(n, 10.0 - n, visual_score=20.0 - n, text_score=n / 10) for n in range(1, 7)]
    scores = [0.1, None, 3.0, -2.0, None, 3.0]
    ranked = reorder(hits, scores, k=6)
    assert [h.page_number for h in ranked] == [3, 6, 1, 4, 2, 5]  # a tie keeps the first order
    assert [h.rerank_score for h in ranked] == [3.0, 3.0, 0.1, -2.0, None, None]
    for before in ranked:  # the first stage's scores stay as they were
        assert before.score == 10.0 - before.page_number
        assert before.visual_score == 20.0 - before.page_number
        assert before.text_score == before.page_number / 10
    assert [h.page_number for h in reorder(hits, scores, k=2)] == [3, 6]


def test_a_reranked_hit_shows_the_reranker_beside_the_picture_and_the_words():
    reranked = hit(1, 0.5, visual_score=12.0, text_score=4.0, rerank_score=-0.25)
    assert reranked.sides == {"picture": 12.0, "words": 4.0, "reranker": -0.25}
    assert "reranker" not in hit(1, 0.5, visual_score=12.0).sides


def test_the_visual_score_is_the_log_softmax_of_yes_against_no():
    logits = torch.tensor([3.0, -1.0, 0.5, 2.0])
    expected = -1.0 - math.log(math.exp(-1.0) + math.exp(2.0))
    assert yes_no(logits, 1, 3) == pytest.approx(expected)
    assert yes_no(logits, 3, 1) == pytest.approx(2.0 - math.log(math.exp(-1.0) + math.exp(2.0)))


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["on", "visual:", "text", "cross:BAAI/bge-reranker-v2-m3"])
def test_a_bad_reranker_setting_is_one_line(value):
    with pytest.raises(ConfigError, match="RAG_RERANKER") as caught:
        Settings.from_env({"RAG_RERANKER": value, "RAG_PROFILE": "gpu"})
    assert "\n" not in str(caught.value)


def test_the_depth_must_be_positive_and_defaults_to_twenty():
    assert Settings().rerank_depth == 20 and Settings().reranker == "off"
    with pytest.raises(ConfigError, match="RAG_RERANK_DEPTH"):
        Settings.from_env({"RAG_RERANK_DEPTH": "0", "RAG_PROFILE": "gpu"})


def test_nothing_loads_at_import():
    code = (
        "import sys, rag, rag.models.rerankers, rag.models.loaded, rag.asking; "
        "heavy = {'peft', 'transformers.models.xlm_roberta', 'transformers.models.qwen2_vl'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


# -- through the pipeline, with a stand-in scorer -----------------------------------------------


class Scorer:
    """A reranker whose scores are known: the page number times ``sign``; it records what it
    was given."""

    def __init__(self, reads: str = "words", sign: float = 1.0) -> None:
        self.reads, self.sign = reads, sign
        self.calls: list[list] = []

    def score(self, question, pages):
        self.calls.append(list(pages))
        return [self.sign * (i + 1) for i in range(len(pages))]  # later first-stage pages first


@pytest.fixture(scope="module")
def library(tiny_models, tmp_path_factory) -> Path:
    """A data folder holding two sample PDFs, indexed once for the module."""
    data = tmp_path_factory.mktemp("reranking")
    settings = Settings(data_dir=data, retriever=str(tiny_models / "colqwen2"), dpi=48)
    pipeline = Pipeline(settings)
    for name in ("annual_report.pdf", "product_slides.pdf"):
        assert pipeline.add_file(SAMPLES / name).status == "indexed"
    return data


@pytest.fixture
def reranking(answering_settings, library) -> Settings:
    return dataclasses.replace(
        answering_settings,
        data_dir=library,
        reranker="text:stand-in",
        rerank_depth=4,
    )


def with_scorer(settings: Settings, scorer) -> Pipeline:
    models = Models(settings)
    models._reranker = scorer
    return Pipeline(settings, models=models)


@pytest.mark.models
def test_the_pages_come_in_the_rerankers_order_from_the_first_stages_best(reranking):
    first = Pipeline(dataclasses.replace(reranking, reranker="off")).search(QUESTION, top_k=4)
    scorer = Scorer()
    pipeline = with_scorer(reranking, scorer)
    hits = pipeline.ask(QUESTION, top_k=2).hits  # None: as RAG_RERANKER says (set)
    (pages,) = scorer.calls
    assert len(pages) == 4  # rerank_depth pages were read, as their words
    assert all(isinstance(words, str) for words in pages)
    assert [(h.doc_id, h.page_number) for h in hits] == [
        (h.doc_id, h.page_number) for h in first[::-1][:2]
    ]
    assert [h.rerank_score for h in hits] == [4.0, 3.0]
    by_page = {(h.doc_id, h.page_number): h for h in first}
    for found in hits:  # the first stage's scores ride along
        same = by_page[(found.doc_id, found.page_number)]
        assert (found.score, found.visual_score, found.text_score) == (
            same.score,
            same.visual_score,
            same.text_score,
        )


@pytest.mark.models
def test_depth_below_k_reranks_k_pages_and_a_visual_reranker_reads_pictures(reranking):
    scorer = Scorer(reads="picture", sign=-1.0)  # the first stage's order kept
    pipeline = with_scorer(dataclasses.replace(reranking, rerank_depth=1), scorer)
    hits = pipeline.search(QUESTION, top_k=3, rerank=True)
    (pages,) = scorer.calls
    assert len(pages) == 3 and all(isinstance(page, Image.Image) for page in pages)
    assert [h.rerank_score for h in hits] == [-1.0, -2.0, -3.0]


@pytest.mark.models
def test_rerank_false_skips_it_and_true_without_a_reranker_is_one_line(reranking):
    scorer = Scorer()
    pipeline = with_scorer(reranking, scorer)
    hits = pipeline.ask(QUESTION, rerank=False).hits
    assert scorer.calls == [] and all(h.rerank_score is None for h in hits)
    off = dataclasses.replace(reranking, reranker="off")
    assert Pipeline(off).ask(QUESTION).hits[0].rerank_score is None
    with pytest.raises(RagError, match=r"^no reranker is set: RAG_RERANKER=text:MODEL or visual"):
        Pipeline(off).ask(QUESTION, rerank=True)


# -- the tiny models, end to end ---------------------------------------------------------------


@pytest.mark.models
@pytest.mark.parametrize("kind", ["text", "visual"])
def test_the_tiny_rerankers_reorder_end_to_end(kind, reranking, tiny_models):
    model = "xlm_roberta_reranker" if kind == "text" else "monoqwen2_vl"
    settings = dataclasses.replace(reranking, reranker=f"{kind}:{tiny_models / model}")
    pipeline = Pipeline(settings)
    assert pipeline.model_problems() == []
    hits = pipeline.ask(QUESTION, top_k=3).hits
    scores = [h.rerank_score for h in hits]
    assert len(hits) == 3 and all(isinstance(score, float) for score in scores)
    assert scores == sorted(scores, reverse=True)
    if kind == "visual":
        assert all(score <= 0 for score in scores)  # a log-probability
    assert all(h.visual_score is not None or h.text_score is not None for h in hits)


@pytest.mark.models
def test_a_page_without_words_gets_no_text_score(tiny_models):
    settings = Settings(device="cpu", reranker=f"text:{tiny_models / 'xlm_roberta_reranker'}")
    reranker = load_reranker(settings)
    scores = reranker.score(QUESTION, ["revenue was 63.8 million", "  ", "cost of sales"])
    assert scores[1] is None and all(isinstance(scores[i], float) for i in (0, 2))


@pytest.fixture(scope="module")
def visual(tiny_models) -> VisualReranker:
    settings = Settings(
        device="cpu",
        dtype="float32",
        reranker=f"visual:{tiny_models / 'monoqwen2_vl'}",
        answer_max_pixels=28 * 28 * 64,
    )
    return load_reranker(settings)


@pytest.mark.models
def test_the_visual_score_is_log_softmax_of_yes_and_no_from_the_models_logits(visual):
    page = Image.new("RGB", (420, 594), "white")
    inputs = visual.inputs(QUESTION, page)
    with torch.inference_mode():
        logits = visual.model(**inputs).logits[0, -1].double()  # every position, by hand
    yes, no = logits[visual.yes].item(), logits[visual.no].item()
    expected = yes - math.log(math.exp(yes) + math.exp(no))
    assert visual.score_page(QUESTION, page) == pytest.approx(expected, abs=1e-5)
    assert visual.processor.tokenizer.decode([visual.yes, visual.no]) == "TF"  # True, False


@pytest.mark.models
def test_the_adapter_is_applied_over_its_base(visual, tiny_models):
    settings = Settings(
        device="cpu",
        dtype="float32",
        reranker=f"visual:{tiny_models / 'qwen2_vl'}",
        answer_max_pixels=28 * 28 * 64,
    )
    base = load_reranker(settings)
    page = Image.new("RGB", (420, 594), "white")
    assert visual.score_page(QUESTION, page) != pytest.approx(base.score_page(QUESTION, page))


@pytest.mark.models
@pytest.mark.parametrize(
    ("kind", "model", "says"),
    [
        ("text", "colqwen2", "is a retriever (ColQwen2), not a reranker"),
        ("visual", "colpali_lora", "is a retriever (ColPali), not a reranker"),
        ("visual", "xlm_roberta_reranker", "is a text-only model"),
        ("text", "qwen2_vl", "is an image model"),
    ],
)
def test_a_checkpoint_that_cannot_rerank_is_one_line(kind, model, says, tiny_models, settings):
    bad = dataclasses.replace(settings, reranker=f"{kind}:{tiny_models / model}")
    with pytest.raises(UnsupportedModelError, match=re.escape(says)) as caught:
        load_reranker(bad)
    assert "\n" not in str(caught.value)


@pytest.mark.models
def test_the_start_up_check_names_a_missing_or_wrong_reranker(answering_settings, tiny_models):
    retriever = dataclasses.replace(answering_settings, reranker=f"text:{tiny_models / 'colqwen2'}")
    (problem,) = Pipeline(retriever).model_problems()
    assert "is a retriever (ColQwen2), not a reranker" in problem
    missing = dataclasses.replace(answering_settings, reranker="visual:/nowhere/monoqwen")
    (problem,) = Pipeline(missing).model_problems()
    assert "/nowhere/monoqwen" in problem and "RAG_RERANKER" in problem
    assert Pipeline(missing).models._reranker is None  # nothing was loaded


# -- the surfaces ------------------------------------------------------------------------------


@pytest.mark.models
def test_ask_rerank_in_the_cli_json(tiny_models, library, tmp_path, capsys, monkeypatch):
    for key, value in {
        "RAG_DPI": "48",
        "RAG_ANSWER_MIN_PIXELS": str(28 * 28 * 4),
        "RAG_ANSWER_MAX_PIXELS": str(28 * 28 * 64),
        "RAG_RERANK_DEPTH": "3",
    }.items():
        monkeypatch.setenv(key, value)
    common = [
        f"--retriever={tiny_models / 'colqwen2'}",
        f"--generator={tiny_models / 'qwen2_vl'}",
        f"--data-dir={library}",
        "--json",
        "--no-answer",
    ]
    monkeypatch.setenv("RAG_RERANKER", "off")
    assert app.main(["ask", QUESTION, "--rerank", *common]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "error: no reranker is set: RAG_RERANKER=text:MODEL or visual:MODEL"

    monkeypatch.setenv("RAG_RERANKER", f"text:{tiny_models / 'xlm_roberta_reranker'}")
    assert app.main(["ask", QUESTION, "--rerank", "--top-k", "2", *common]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 2 and all(isinstance(h["rerank_score"], float) for h in hits)
    assert hits[0]["rerank_score"] >= hits[1]["rerank_score"]
    assert app.main(["ask", QUESTION, "--no-rerank", *common]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert all(h["rerank_score"] is None for h in hits)


@pytest.mark.models
def test_the_api_and_the_sources_line_show_the_rerankers_score(reranking, capsys):
    from ui.api import describe

    answer = with_scorer(reranking, Scorer()).ask(QUESTION, top_k=2)
    described = describe(answer)["hits"]
    assert [h["rerank_score"] for h in described] == [4.0, 3.0]
    app.print_answer(answer, stream=False)
    assert "reranker 4.000" in capsys.readouterr().out


def test_the_latency_benchmarks_reranker_rows_render_from_their_data():
    from benchmarks import rerank_cost

    cost = rerank_cost.RerankCost("cpu", "bfloat16", 20, 800e9, 568_000_000, 2_200_000_000)
    cost.text = [{"tokens": 512, "question_s": 9.0, "flops": 6.7e12}]
    cost.visual = [
        {"budget": 1280 * 28 * 28, "image_tokens": 1260, "tokens": 1300, "page_s": math.nan}
        | {"flops": 15e12},
        {"budget": 512 * 512, "image_tokens": 330, "tokens": 380, "page_s": 5.0, "flops": 3.3e12},
    ]
    text = rerank_cost.report(cost, "python -m benchmarks.latency --rerankers", "a machine")
    assert "v2-m3: 20 pages' words, 512 tokens a pair | 9.00 s | 8.38 s | 93% |" in text
    assert "20 pages at 1.00 MP (1260 image tokens a page) | not measured | 375.00 s |" in text
    assert "20 pages at 512 x 512 px (330 image tokens a page) | 100.00 s | 82.50 s | 82% |" in text
