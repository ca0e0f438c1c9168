"""The remote answerer over the wire, against real OpenAI-compatible servers: this app's own
``/v1`` started as another process on tiny models, and (opt-in) vLLM's CPU build serving the
same tiny Qwen2-VL checkpoint (docs/testing.md, "A model server")."""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from rag.chat import Turn, recent, rewrite_prompt, rewrite_request
from rag.config import Settings
from rag.errors import ModelServerError
from rag.models.answerer import Answerer
from rag.models.families.base import PageImage
from rag.models.remote import RemoteAnswerer, fitted
from rag.pipeline import Pipeline
from tests.helpers import SAMPLES
from tests.helpers.servers import app_env, running_app

pytestmark = pytest.mark.models

MIN_PIXELS, MAX_PIXELS = 28 * 28 * 4, 28 * 28 * 64  # app_env's answer budget
QUESTION = "What is the revenue?"
HISTORY = (Turn("What were the costs?", "3 M€ [doc.pdf p.2]"),)


def pages() -> list[PageImage]:
    return [
        PageImage("[doc.pdf p.1]", Image.new("RGB", (400, 560), "navy")),
        PageImage("[doc.pdf p.2]", Image.new("RGB", (400, 560), "orange"), "Costs 3 M€"),
    ]


def remote(url: str, model: str, **changes) -> RemoteAnswerer:
    values = {"answer_min_pixels": MIN_PIXELS, "answer_max_pixels": MAX_PIXELS}
    values |= {"max_new_tokens": 16, "generator_timeout_s": 120} | changes
    settings = Settings(generator=f"openai:{model}", generator_url=url, **values)
    return RemoteAnswerer(settings.validated())


def in_process(tiny_models) -> Answerer:
    """The tiny Qwen2-VL as the app's own answerer, with app_env's budgets."""
    settings = Settings(
        generator=str(tiny_models / "qwen2_vl"),
        answer_min_pixels=MIN_PIXELS,
        answer_max_pixels=MAX_PIXELS,
        max_new_tokens=16,
    )
    return Answerer.load(settings.validated())


def as_sent(shown: list[PageImage]) -> list[PageImage]:
    """The pages as the remote answerer sends them (within the budget, PNG: lossless)."""
    return [dataclasses.replace(page, image=fitted(page.image, MAX_PIXELS)) for page in shown]


# -- this app's own /v1 ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_v1(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("v1-server")
    with running_app(app_env(tiny_models, folder / "data"), log=folder / "server.log") as url:
        yield f"{url}/v1"


@pytest.mark.processes
def test_the_apps_v1_is_a_server_the_remote_answerer_checks(app_v1):
    assert remote(app_v1, "docs").problem() is None  # it lists "docs"
    assert "has no model 'nope' (it serves: docs)" in remote(app_v1, "nope").problem()
    with pytest.raises(ModelServerError) as caught:
        list(remote(app_v1, "nope").stream(QUESTION, pages()))
    assert "\n" not in str(caught.value) and "nope" in str(caught.value)


@pytest.mark.processes
def test_an_answer_through_the_apps_v1_equals_the_in_process_answer(app_v1, tiny_models):
    through = remote(app_v1, "docs")
    streamed = "".join(through.stream(QUESTION, pages(), history=HISTORY))
    assert streamed == through.answer(QUESTION, pages(), history=HISTORY)
    assert streamed == in_process(tiny_models).answer(QUESTION, as_sent(pages()), None, HISTORY)


@pytest.mark.processes
def test_the_app_asks_and_follows_up_with_a_model_server_writing(app_v1, tiny_models, tmp_path):
    """The whole chat over the wire: search here, the answer and the follow-up's rewrite
    written by another copy of the app, each equal to what the in-process answerer writes."""
    settings = Settings(
        data_dir=tmp_path / "data",
        retriever=str(tiny_models / "colqwen2"),
        dpi=48,
        generator="openai:docs",
        generator_url=app_v1,
        answer_min_pixels=MIN_PIXELS,
        answer_max_pixels=MAX_PIXELS,
        max_new_tokens=16,
    )
    pipeline = Pipeline(settings.validated())
    assert pipeline.add_file(SAMPLES / "annual_report.pdf").status == "indexed"
    answer = pipeline.ask(QUESTION, 1)
    streamed = "".join(answer.stream())
    local = in_process(tiny_models)
    assert streamed == local.answer(QUESTION, as_sent(answer.pages()), None, ())
    history = (Turn(QUESTION, streamed),)
    follow_up = pipeline.ask("And in 2023?", 1, history=history)
    # The server reads back exactly the conversation the prompt was written from, and its
    # model writes the rewrite. (Its 64 greedy tokens are not compared with this process's: on
    # random weights, near-tied logits part ways between two processes after a few dozen.)
    sent = rewrite_prompt("And in 2023?", recent(history))
    assert rewrite_request(sent) == ("And in 2023?", recent(history))
    assert follow_up.searched != "And in 2023?"
    assert follow_up.searched == remote(app_v1, "docs").rewrite("And in 2023?", recent(history))


# -- vLLM (CPU build), opt-in ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_v1(tiny_models) -> str:
    """RAG_TEST_VLLM_URL: a vLLM server started as docs/testing.md shows, serving the tiny
    Qwen2-VL as ``tiny-qwen``."""
    url = os.environ.get("RAG_TEST_VLLM_URL", "").rstrip("/")
    if not url:
        pytest.skip("RAG_TEST_VLLM_URL is not set (a vLLM server on the tiny Qwen2-VL)")
    with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
        (served,) = json.load(response)["data"]
    assert Path(served["root"]) == Path(tiny_models / "qwen2_vl"), "another checkpoint"
    return url


@pytest.mark.processes
def test_vllm_answers_as_the_in_process_answerer_does(vllm_v1, tiny_models):
    through = remote(vllm_v1, "tiny-qwen")
    assert through.problem() is None
    streamed = list(through.stream(QUESTION, pages(), history=HISTORY))
    assert len(streamed) > 1  # pieces, as they came
    assert "".join(streamed) == through.answer(QUESTION, pages(), history=HISTORY)
    local = in_process(tiny_models).answer(QUESTION, as_sent(pages()), None, HISTORY)
    assert "".join(streamed) == local


@pytest.mark.processes
def test_vllm_refusals_are_one_line(vllm_v1):
    with pytest.raises(ModelServerError, match=r"has no model 'nope' \(it serves: tiny-qwen\)"):
        remote(vllm_v1, "nope").answer(QUESTION, pages())
    long = (Turn("word " * 3000, "answer"),)  # past the server's --max-model-len 2048
    with pytest.raises(ModelServerError, match="more than 'tiny-qwen' takes"):
        remote(vllm_v1, "tiny-qwen").answer(QUESTION, pages(), history=long)
