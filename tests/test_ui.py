"""The real Gradio app on 127.0.0.1, driven through its named API with gradio_client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.helpers import ROOT, SAMPLES, pdfs
from tests.helpers.files import truncated
from tests.helpers.servers import app_env, listed, running_app

pytestmark = [pytest.mark.models, pytest.mark.processes]  # app servers


@pytest.fixture(scope="module")
def app_url(tiny_models, tmp_path_factory):
    """The URL of a library app shared by this module's tests (its documents accumulate)."""
    folder = tmp_path_factory.mktemp("library")
    with running_app(app_env(tiny_models, folder / "data"), log=folder / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def public_url(tiny_models, tmp_path_factory):
    """The URL of a public app (a session per client) shared by this module's tests."""
    folder = tmp_path_factory.mktemp("public")
    env = {**app_env(tiny_models, folder / "data"), "RAG_PUBLIC_MAX_FILE_MB": "1"}
    with running_app(env, "--public", log=folder / "server.log") as url:
        yield url


def table_rows(table: dict) -> list[list]:
    return (table.get("value") or {}).get("data") or []


def progress_units(job) -> list:
    """Every gr.Progress update the job reported, in order."""
    units, queue = [], job.communicator.updates
    while True:
        try:
            update = queue.get_nowait()
        except asyncio.QueueEmpty:
            return units
        units += getattr(update, "progress_data", None) or []


ENDPOINTS = {"/index", "/ask", "/page", "/list", "/delete", "/tag"}
# The MCP tools (ui/tools.py) are API endpoints too: only they are offered to agents.
TOOLS = {"/search_documents", "/ask_documents", "/list_documents", "/get_page"}


def test_upload_with_progress_then_ask_stream_pages_and_delete(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(api) == ENDPOINTS | TOOLS  # the page's own events are not part of the API
    described = client.view_api(print_info=False, return_format="str")
    assert "value_" not in described and "Literal[]" not in described
    (doc,) = api["/delete"]["parameters"]
    assert doc["parameter_name"] == "doc" and doc["python_type"]["type"] == "str"

    broken = truncated(tmp_path / "broken.pdf", pdfs.SOURCE, keep=900)
    files = [SAMPLES / "annual_report.pdf", broken, SAMPLES / "expense_form.pdf"]
    job = client.submit([handle_file(str(f)) for f in files], api_name="/index")
    status, table = job.result(timeout=300)
    assert "annual_report.pdf: indexed, 3 pages" in status
    assert "expense_form.pdf: indexed, 1 page" in status
    assert "broken.pdf: refused" in status and "damaged" in status  # the rest still indexed
    assert sorted(row[0] for row in table_rows(table)) == ["annual_report.pdf", "expense_form.pdf"]
    units = progress_units(job)
    assert any("annual_report.pdf: 3/3 pages" in (u.desc or "") for u in units)
    assert any("pages/s" in (u.desc or "") for u in units)
    done = [u for u in units if u.index is not None and u.index == u.length]
    assert done, "progress never reached its total"

    again = client.predict([handle_file(str(SAMPLES / "annual_report.pdf"))], api_name="/index")
    assert "already indexed" in again[0]

    job = client.submit(
        "What was the revenue in 2024?", top_k=2, max_new_tokens=16, api_name="/ask"
    )
    updates = [dict(update) for update in job]
    first, final = updates[0], updates[-1]
    assert len(updates) >= 3  # pages first, then the answer in pieces
    assert first["answer"] == ""  # the pages arrive before any answer text
    assert first["searched"] == final["question"] == "What was the revenue in 2024?"
    assert len(final["hits"]) == 2
    assert all(h["citation"] == f"[{h['name']} p.{h['page']}]" for h in final["hits"])
    answers = [update["answer"] for update in updates]
    assert answers == sorted(answers, key=len) and final["answer"]  # it only grows
    assert "2024" in final["words"]  # words, not the tokenizer's pieces of them

    whole, title = client.predict(0, api_name="/page")
    plain, _ = client.predict(0, "", False, api_name="/page")
    word, _ = client.predict(1, final["words"][0], api_name="/page")
    top = final["hits"][0]
    assert title == f"{top['name']}, page {top['page']} (score {top['score']:.2f})"
    with Image.open(whole) as a, Image.open(plain) as b, Image.open(word) as c:
        assert a.size == b.size and c.size[0] > 0  # the overlay is drawn on the page itself
        assert list(a.getdata()) != list(b.getdata())
    with pytest.raises(AppError, match=r"page index 2 is out of range: .* retrieved 2 pages"):
        client.predict(2, api_name="/page")
    with pytest.raises(AppError, match="not a word of"):
        client.predict(0, "zebra", api_name="/page")

    doc_id = listed(client)["expense_form.pdf"]["doc_id"]
    assert client.predict(doc_id, api_name="/delete") == f"Deleted expense_form.pdf ({doc_id})."
    assert list(listed(client)) == ["annual_report.pdf"]
    with pytest.raises(AppError, match="no document with the id or name"):
        client.predict(doc_id, api_name="/delete")


def test_the_chat_endpoint_takes_history_and_scope(app_url, tiny_models, tmp_path):
    """/ask with a history: a follow-up is searched as the standalone question the answerer
    writes from it, and answered after it, exactly as the engine does for the same turns."""
    from rag.chat import Turn
    from rag.config import Settings
    from rag.pipeline import Pipeline

    client = Client(app_url, verbose=False)
    client.predict([handle_file(str(SAMPLES / "product_slides.pdf"))], api_name="/index")
    history = [
        {"role": "user", "content": "What was the revenue in 2024?"},
        {"role": "assistant", "content": "63.8 million euros [annual_report.pdf p.1]."},
    ]
    scope = ["product_slides.pdf"]
    result = client.predict("And in 2023?", scope, history, 3, 16, api_name="/ask")
    assert {h["name"] for h in result["hits"]} == {"product_slides.pdf"}  # within the scope
    assert result["scope"] == scope

    env = app_env(tiny_models, tmp_path)  # the same models, in this process
    settings = Settings.from_env(retriever=env["RAG_RETRIEVER"], generator=env["RAG_GENERATOR"])
    turns = [Turn("What was the revenue in 2024?", "63.8 million euros [annual_report.pdf p.1].")]
    answerer = Pipeline(settings).answerer
    assert result["searched"] == answerer.rewrite("And in 2023?", turns)
    assert result["searched"] and len(result["searched"]) <= 300

    literal = client.predict("And in 2023?", scope, history, 3, 16, False, api_name="/ask")
    assert literal["searched"] == "And in 2023?"  # rewrite=False: searched as written
    alone = client.predict("And in 2023?", scope, [], 3, 16, False, api_name="/ask")
    assert literal["hits"] == alone["hits"]  # the history changed what was searched, not this
    with pytest.raises(AppError, match="top_k must be at least 1"):
        client.predict("And in 2023?", scope, history, 0, api_name="/ask")


def test_public_sessions_are_private_and_limited(public_url):
    alice, bob = Client(public_url, verbose=False), Client(public_url, verbose=False)
    alice.predict([handle_file(str(SAMPLES / "annual_report.pdf"))], api_name="/index")
    assert list(listed(alice)) == ["annual_report.pdf"]
    assert listed(bob) == {}
    with pytest.raises(AppError, match="no documents are indexed yet"):
        bob.predict("revenue?", api_name="/ask")
    doc_id = listed(alice)["annual_report.pdf"]["doc_id"]
    with pytest.raises(AppError, match="no document with the id or name"):
        bob.predict(doc_id, api_name="/delete")
    assert len(listed(alice)) == 1

    bob.predict([handle_file(str(SAMPLES / "product_slides.pdf"))], api_name="/index")
    answers = {}

    def ask(name: str, client: Client) -> None:
        answers[name] = client.predict("What is planned?", top_k=3, api_name="/ask")

    threads = [threading.Thread(target=ask, args=item) for item in (("a", alice), ("b", bob))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    # Asked at the same time, each sees only pages of its own documents.
    assert {h["name"] for h in answers["a"]["hits"]} == {"annual_report.pdf"}
    assert {h["name"] for h in answers["b"]["hits"]} == {"product_slides.pdf"}

    status = bob.predict(
        [handle_file(str(SAMPLES / f)) for f in ("expense_form.pdf", "multilingual.pdf")],
        api_name="/index",
    )[0]
    assert "expense_form.pdf: indexed" in status
    assert "multilingual.pdf: refused" in status and "full (2 documents)" in status


def test_library_login(tiny_models, tmp_path):
    env = {**app_env(tiny_models, tmp_path / "data"), "RAG_AUTH": "team:s3cret"}
    with running_app(env, log=tmp_path / "server.log") as url:
        with pytest.raises(ValueError):
            Client(url, verbose=False)  # no credentials: the app is not readable
        client = Client(url, auth=("team", "s3cret"), verbose=False)
        assert listed(client) == {}


def test_a_busy_queue_reports_the_place_in_line(app_url):
    from gradio_client.utils import Status

    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    long_job = first.submit("Describe every page in detail.", top_k=3, api_name="/ask")
    waiting = second.submit("What was the revenue?", top_k=1, max_new_tokens=16, api_name="/ask")
    waiting.result(timeout=300)
    long_job.result(timeout=300)
    statuses = []
    while not waiting.communicator.updates.empty():
        statuses.append(waiting.communicator.updates.get_nowait())
    queued = [s for s in statuses if getattr(s, "code", None) == Status.IN_QUEUE]
    assert queued and all(s.rank is not None for s in queued)


def test_public_uploads_over_the_size_limit_are_cut_off(public_url, tmp_path):
    big = tmp_path / "big.pdf"
    big.write_bytes((SAMPLES / "annual_report.pdf").read_bytes() + b"%" + b"0" * (2 * 2**20))
    client = Client(public_url, verbose=False)
    with pytest.raises(Exception, match=r"(?i)size|large"):
        client.predict([handle_file(str(big))], api_name="/index")
    assert listed(client) == {}


def test_an_encrypted_pdf_is_indexed_with_its_password(public_url, tmp_path):
    locked = [handle_file(str(pdfs.encrypted(tmp_path / "locked.pdf", source=pdfs.EXPENSE_FORM)))]
    client = Client(public_url, verbose=False)
    assert "password required" in client.predict(locked, api_name="/index")[0]
    assert "wrong password" in client.predict(locked, "guess", api_name="/index")[0]
    assert "locked.pdf: indexed, 1 page" in client.predict(locked, "secret", api_name="/index")[0]
    assert list(listed(client)) == ["locked.pdf"]


def retrieved(client: Client, scope: list[str]) -> set[str]:
    """The names of the documents whose pages /ask retrieved (6 pages: all of both samples')."""
    result = client.predict("revenue?", scope, top_k=6, max_new_tokens=16, api_name="/ask")
    return {hit["name"] for hit in result["hits"]}


def test_the_api_tags_documents_and_asks_within_them(public_url):
    """A fresh public session: /tag sets tags (by id or name), /ask takes a scope of documents
    (id or name) and tags, and a bad scope or tag is one line that changes nothing."""
    client = Client(public_url, verbose=False)
    files = [SAMPLES / "annual_report.pdf", SAMPLES / "product_slides.pdf"]
    client.predict([handle_file(str(f)) for f in files], api_name="/index")
    ids = {name: d["doc_id"] for name, d in listed(client).items()}
    tags = client.predict("annual_report.pdf", ["Finance", "2024"], api_name="/tag")
    assert tags == ["2024", "finance"]
    client.predict(ids["product_slides.pdf"], ["2024"], api_name="/tag")
    assert retrieved(client, ["tag:finance"]) == {"annual_report.pdf"}
    assert retrieved(client, [f"doc:{ids['product_slides.pdf']}"]) == {"product_slides.pdf"}
    assert retrieved(client, ["product_slides.pdf"]) == {"product_slides.pdf"}  # by name
    assert retrieved(client, ["tag:2024"]) == {"annual_report.pdf", "product_slides.pdf"}
    for bad, words in (("tag:nothing", "no document is tagged"), ("nope.pdf", "no document")):
        with pytest.raises(AppError, match=words):
            client.predict("revenue?", [bad], api_name="/ask")
    with pytest.raises(AppError, match="bad tag"):
        client.predict("annual_report.pdf", ["two words!"], api_name="/tag")
    assert client.predict("annual_report.pdf", [], ["2024"], api_name="/tag") == ["finance"]
    tags = {name: d["tags"] for name, d in listed(client).items()}
    assert tags == {"annual_report.pdf": ["finance"], "product_slides.pdf": ["2024"]}


def test_the_readme_api_example_runs_as_written(tiny_models, tmp_path):
    readme = (ROOT / "README.md").read_text()
    code = readme.split("<!-- api-example -->\n```python\n", 1)[1].split("```", 1)[0]
    with running_app(app_env(tiny_models, tmp_path / "data"), log=tmp_path / "log") as url:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "RAG_URL": url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "- annual_report.pdf: indexed, 3 pages" in result.stdout
    assert "['2024', 'finance']" in result.stdout
    assert "Deleted annual_report.pdf" in result.stdout.splitlines()[-1]


def test_the_upload_takes_office_files_and_images_and_refuses_other_types(app_url, tmp_path):
    from tests.helpers import images, officefiles

    client = Client(app_url, verbose=False)
    deck = officefiles.pptx(tmp_path / "roadmap.pptx")
    photo = images.photo(tmp_path / "whiteboard.jpg")
    status, _ = client.predict([handle_file(str(deck)), handle_file(str(photo))], api_name="/index")
    assert "roadmap.pptx: indexed, 3 pages" in status
    assert "whiteboard.jpg: indexed, 1 page" in status
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ a program")
    status, _ = client.predict([handle_file(str(program))], api_name="/index")
    assert "- setup.exe: refused: not a type this app reads" in status  # the app's own line
    assert "setup.exe" not in listed(client)
    hits = client.predict("Osprey budget", top_k=3, max_new_tokens=4, api_name="/ask")
    assert "[roadmap.pptx slide" in str(hits)
