"""Strangers at once: 20 sessions asking while another uploads, and sessions that try to reach
each other's documents through the API with guessed or stolen ids."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.helpers import SAMPLES, pdfs
from tests.helpers.processes import descendants, wait_until
from tests.helpers.servers import app_env, listed, running_server

pytestmark = [pytest.mark.models, pytest.mark.processes]  # app servers

TOPICS = [
    "revenue", "costs", "hiring", "risks", "strategy", "customers", "products", "margins",
    "debt", "cash", "taxes", "dividends", "marketing", "research", "suppliers", "offices",
    "pensions", "salaries", "forecasts", "auditors",
]  # fmt: skip


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def ask(client: Client, question: str) -> tuple[str, tuple[str, ...]]:
    """The answer text and the words offered for heatmaps (they spell the question)."""
    result = client.predict(question, top_k=2, max_new_tokens=16, api_name="/ask")
    return result["answer"], tuple(result["words"])


def test_twenty_sessions_ask_while_another_uploads(tiny_models, tmp_path):
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_MAX_QUEUE": "64"}
    with running_server(env, log=tmp_path / "server.log") as (url, server):
        setup = Client(url, verbose=False)
        setup.predict([handle_file(str(SAMPLES / "annual_report.pdf"))], api_name="/index")
        questions = [f"What does the report say about {topic}?" for topic in TOPICS]
        before = {question: ask(setup, question) for question in questions}
        assert len(set(before.values())) == len(questions)  # every reply tells its question
        memory_before = rss_mb(server.pid)

        answers: dict[str, tuple[str, tuple[str, ...]]] = {}
        errors: list[BaseException] = []

        def run(task, *args) -> None:
            try:
                task(*args)
            except BaseException as error:
                errors.append(error)

        def asker(question: str) -> None:
            answers[question] = ask(Client(url, verbose=False), question)

        def uploader() -> None:
            files = [handle_file(str(SAMPLES / "product_slides.pdf"))]
            status = Client(url, verbose=False).predict(files, api_name="/index")[0]
            assert "product_slides.pdf: indexed" in status

        threads = [threading.Thread(target=run, args=(asker, q)) for q in questions]
        threads.append(threading.Thread(target=run, args=(uploader,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert errors == []
        after = {question: ask(setup, question) for question in questions}
        for question in questions:  # retrieved before or after the upload, never another's
            assert answers[question] in {before[question], after[question]}
        assert rss_mb(server.pid) - memory_before < 600


def test_public_sessions_cannot_reach_each_other_through_the_api(tiny_models, tmp_path):
    with running_server(
        app_env(tiny_models, tmp_path / "data"), "--public", log=tmp_path / "server.log"
    ) as (url, _):
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        alice.predict([handle_file(str(SAMPLES / "annual_report.pdf"))], api_name="/index")
        doc_id = listed(alice)["annual_report.pdf"]["doc_id"]
        ask(alice, "What was the revenue?")

        assert listed(bob) == {}
        for guess in (doc_id, "../" + doc_id, "*", ""):
            with pytest.raises(AppError):
                bob.predict(guess, api_name="/delete")
        with pytest.raises(AppError, match="Ask a question first"):
            bob.predict(0, api_name="/page")  # alice's retrieved pages are not bob's
        with pytest.raises(AppError, match="Ask a question first"):
            bob.predict(0, "revenue", api_name="/page")
        with pytest.raises(AppError, match="no documents are indexed yet"):
            ask(bob, "What was the revenue?")
        with pytest.raises(AppError, match="not a word of"):
            alice.predict(0, "9999", api_name="/page")  # nonsense from the owner: one line
        with pytest.raises(AppError, match="out of range"):
            alice.predict(-1, api_name="/page")
        assert [d["doc_id"] for d in listed(alice).values()] == [doc_id]


def test_questions_are_answered_while_a_costly_file_renders(tiny_models, tmp_path):
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_RENDER_PAGE_TIMEOUT_S": "10"}
    endless = pdfs.endless_drawing(tmp_path / "endless.pdf")
    with running_server(env, log=tmp_path / "server.log") as (url, server):
        asker, uploader = Client(url, verbose=False), Client(url, verbose=False)
        asker.predict([handle_file(str(SAMPLES / "annual_report.pdf"))], api_name="/index")
        ask(asker, "What was the revenue?")  # models loaded
        upload = uploader.submit([handle_file(str(endless))], api_name="/index")
        wait_until(  # the upload is rendering
            lambda: any(name == "pdftoppm" for _, name in descendants(server.pid)),
            "the upload's rendering",
            limit_s=60,
        )
        ask(asker, "What were the costs?")
        assert not upload.done(), "the question waited for the rendering"
        status = upload.result(timeout=120)[0]
        assert "endless.pdf: refused: page 1 took longer" in status
        assert "RAG_RENDER_PAGE_TIMEOUT_S" in status
