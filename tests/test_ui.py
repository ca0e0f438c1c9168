"""The real Gradio app on 127.0.0.1, driven through its named API with gradio_client."""

from __future__ import annotations

import asyncio
import threading

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests import pdfs
from tests.conftest import SAMPLES
from tests.servers import running_app

pytestmark = pytest.mark.models


def app_env(tiny_models, data_dir) -> dict[str, str]:
    return {
        "RAG_RETRIEVER": str(tiny_models / "colqwen2"),
        "RAG_GENERATOR": str(tiny_models / "qwen2_vl"),
        "RAG_DATA_DIR": str(data_dir),
        "RAG_DPI": "48",
        "RAG_MAX_NEW_TOKENS": "16",
        "RAG_ANSWER_MIN_PIXELS": str(28 * 28 * 4),
        "RAG_ANSWER_MAX_PIXELS": str(28 * 28 * 64),
        "RAG_PUBLIC_MAX_DOCUMENTS": "2",
    }


@pytest.fixture(scope="module")
def library(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("library")
    with running_app(app_env(tiny_models, folder / "data"), log=folder / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def public(tiny_models, tmp_path_factory):
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


def test_upload_with_progress_then_ask_stream_heatmaps_and_delete(library, tmp_path):
    client = Client(library, verbose=False)
    assert {"/index", "/ask", "/list", "/delete", "/heatmap", "/page"} <= set(
        client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    )
    files = [SAMPLES / "annual_report.pdf", pdfs.truncated(tmp_path), SAMPLES / "expense_form.pdf"]
    job = client.submit([handle_file(str(f)) for f in files], api_name="/index")
    status, table, _choice = job.result(timeout=300)
    assert "annual_report.pdf: indexed 3 pages" in status
    assert "expense_form.pdf: indexed 1 pages" in status
    assert "broken.pdf: refused" in status and "damaged" in status  # the rest still indexed
    assert sorted(row[0] for row in table_rows(table)) == ["annual_report.pdf", "expense_form.pdf"]
    units = progress_units(job)
    assert any("annual_report.pdf: 3/3 pages" in (u.desc or "") for u in units)
    assert any("pages/s" in (u.desc or "") for u in units)
    done = [u for u in units if u.index is not None and u.index == u.length]
    assert done, "progress never reached its total"

    again = client.predict([handle_file(str(SAMPLES / "annual_report.pdf"))], api_name="/index")
    assert "already indexed" in again[0]

    job = client.submit("What was the revenue in 2024?", 2, 16, api_name="/ask")
    updates = list(job)
    final = job.outputs()[-1]
    first = job.outputs()[0]
    assert len(job.outputs()) >= 3  # pages first, then the answer in pieces
    assert first[0] == ""  # pages and heatmap arrive before any answer text
    gallery = first[1]["value"]
    assert len(gallery) == 2 and all("score" in item["caption"] for item in gallery)
    for item in gallery:
        with Image.open(item["image"]) as page:
            assert page.width > 0
    with Image.open(first[2]) as heatmap, Image.open(gallery[0]["image"]) as page:
        assert heatmap.size == page.size  # overlay drawn on the top page
    token_choices = first[3]["choices"]
    assert token_choices[0][0] == "whole query" and len(token_choices) > 1
    assert isinstance(final[0], str) and final[0] == "".join(final[0])
    answers = [out[0] for out in job.outputs()]
    assert answers == sorted(answers, key=len)  # the text only grows while streaming
    assert updates

    token_map = client.predict(token_choices[1][1], api_name="/heatmap")
    whole, _ = client.predict(1, api_name="/page")
    for path in (token_map, whole):
        with Image.open(path) as image:
            assert image.size[0] > 0

    listed, _choice = client.predict(api_name="/list")
    doc_id = next(row[3] for row in table_rows(listed) if row[0] == "expense_form.pdf")
    message, table, _ = client.predict(doc_id, api_name="/delete")
    assert message == "Deleted expense_form.pdf."
    assert [row[0] for row in table_rows(table)] == ["annual_report.pdf"]


def test_public_sessions_are_private_and_limited(public):
    alice, bob = Client(public, verbose=False), Client(public, verbose=False)
    alice.predict([handle_file(str(SAMPLES / "annual_report.pdf"))], api_name="/index")
    assert [r[0] for r in table_rows(alice.predict(api_name="/list")[0])] == ["annual_report.pdf"]
    assert table_rows(bob.predict(api_name="/list")[0]) == []
    with pytest.raises(AppError, match="no documents are indexed yet"):
        bob.predict("revenue?", 2, 16, api_name="/ask")
    doc_id = table_rows(alice.predict(api_name="/list")[0])[0][3]
    with pytest.raises(AppError, match="no document with the id or name"):
        bob.predict(doc_id, api_name="/delete")
    assert len(table_rows(alice.predict(api_name="/list")[0])) == 1

    bob.predict([handle_file(str(SAMPLES / "product_slides.pdf"))], api_name="/index")
    answers = {}

    def ask(name: str, client: Client) -> None:
        answers[name] = client.predict("What is planned?", 3, 16, api_name="/ask")

    threads = [threading.Thread(target=ask, args=item) for item in (("a", alice), ("b", bob))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    # Asked at the same time, each sees only pages of its own documents.
    assert {c[0] for c in answers["a"][4]["choices"]} <= {
        f"[annual_report.pdf p.{n}]" for n in (1, 2, 3)
    }
    assert {c[0] for c in answers["b"][4]["choices"]} <= {
        f"[product_slides.pdf p.{n}]" for n in (1, 2, 3)
    }

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
        assert table_rows(client.predict(api_name="/list")[0]) == []


def test_a_busy_queue_reports_the_place_in_line(library):
    from gradio_client.utils import Status

    first, second = Client(library, verbose=False), Client(library, verbose=False)
    long_job = first.submit("Describe every page in detail.", 3, 2048, api_name="/ask")
    waiting = second.submit("What was the revenue?", 1, 16, api_name="/ask")
    waiting.result(timeout=300)
    long_job.result(timeout=300)
    statuses = []
    while not waiting.communicator.updates.empty():
        statuses.append(waiting.communicator.updates.get_nowait())
    queued = [s for s in statuses if getattr(s, "code", None) == Status.IN_QUEUE]
    assert queued and all(s.rank is not None for s in queued)


def test_public_uploads_over_the_size_limit_are_cut_off(public, tmp_path):
    big = tmp_path / "big.pdf"
    big.write_bytes((SAMPLES / "annual_report.pdf").read_bytes() + b"%" + b"0" * (2 * 2**20))
    client = Client(public, verbose=False)
    with pytest.raises(Exception, match=r"(?i)size|large"):
        client.predict([handle_file(str(big))], api_name="/index")
    assert table_rows(client.predict(api_name="/list")[0]) == []


def test_an_encrypted_pdf_is_indexed_with_its_password(public, tmp_path):
    locked = [handle_file(str(pdfs.encrypted(tmp_path)))]
    client = Client(public, verbose=False)
    assert "password required" in client.predict(locked, api_name="/index")[0]
    assert "wrong password" in client.predict(locked, "guess", api_name="/index")[0]
    assert "locked.pdf: indexed 1 pages" in client.predict(locked, "secret", api_name="/index")[0]
    assert [r[0] for r in table_rows(client.predict(api_name="/list")[0])] == ["locked.pdf"]


def retrieved(client: Client, scope: list[str]) -> set[str]:
    """The names of the documents whose pages /ask retrieved (6 pages: all of both samples')."""
    job = client.submit("revenue?", 6, 16, scope, api_name="/ask")
    job.result()
    gallery = job.outputs()[0][1]["value"]  # the pages come first, before the answer
    return {item["caption"].split(" p.")[0].removeprefix("[") for item in gallery}


def test_the_api_tags_documents_and_asks_within_them(public):
    """A fresh public session: /tag sets tags (by id or name), /ask takes a scope of documents
    (id or name) and tags, and a bad scope or tag is one line that changes nothing."""
    client = Client(public, verbose=False)
    files = [SAMPLES / "annual_report.pdf", SAMPLES / "product_slides.pdf"]
    client.predict([handle_file(str(f)) for f in files], api_name="/index")
    rows = table_rows(client.predict(api_name="/list")[0])
    ids = {row[0]: row[3] for row in rows}
    message, table, _ = client.predict("annual_report.pdf", "Finance, 2024", "", api_name="/tag")
    assert message == "annual_report.pdf: tags: 2024, finance."
    assert {row[0]: row[4] for row in table_rows(table)}["annual_report.pdf"] == "2024, finance"
    client.predict(ids["product_slides.pdf"], "2024", "", api_name="/tag")
    assert retrieved(client, ["tag:finance"]) == {"annual_report.pdf"}
    assert retrieved(client, [f"doc:{ids['product_slides.pdf']}"]) == {"product_slides.pdf"}
    assert retrieved(client, ["product_slides.pdf"]) == {"product_slides.pdf"}  # by name
    assert retrieved(client, ["tag:2024"]) == {"annual_report.pdf", "product_slides.pdf"}
    for bad, words in (("tag:nothing", "no document is tagged"), ("nope.pdf", "no document")):
        with pytest.raises(AppError, match=words):
            client.predict("revenue?", 3, 16, [bad], api_name="/ask")
    with pytest.raises(AppError, match="bad tag"):
        client.predict("annual_report.pdf", "two words!", "", api_name="/tag")
    tags = {row[0]: row[4] for row in table_rows(client.predict(api_name="/list")[0])}
    assert tags == {"annual_report.pdf": "2024, finance", "product_slides.pdf": "2024"}
