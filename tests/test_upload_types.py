"""A text file, a Markdown page and an e-mail uploaded to the web app (whose upload box takes
every type of the table of formats) are indexed and found by their words, through a real server
driven by gradio_client."""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from tests.helpers import mailfiles
from tests.helpers.servers import app_env, listed, running_app


@pytest.fixture(scope="module")
def app_url(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    env = {**app_env(tiny_models, folder / "data"), "RAG_HYBRID": "text"}  # ranked by words
    with running_app(env, log=folder / "server.log") as url:
        yield url


@pytest.mark.processes
def test_text_files_and_e_mails_upload_and_are_found_by_their_words(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    notes = tmp_path / "notes.txt"
    notes.write_text("Standup notes: the Pelican7719 rollout moves to Thursday.\n")
    page = tmp_path / "guide.md"
    page.write_text("# Setup guide\n\n| step | tool |\n|---|---|\n| 1 | Wrangler5308 |\n")
    mail = mailfiles.eml(tmp_path / "thread.eml", {}, subject="Budget Heronsby2260 approved")
    files = [handle_file(str(path)) for path in (notes, page, mail)]
    status, _ = client.predict(files, api_name="/index")
    for name in ("notes.txt", "guide.md", "thread.eml"):
        assert f"{name}: indexed, 1 page" in status, status
    assert {"notes.txt", "guide.md", "thread.eml"} <= set(listed(client))
    found = {"Pelican7719": "notes.txt", "Wrangler5308": "guide.md", "Heronsby2260": "thread.eml"}
    for word, name in found.items():
        hits = str(client.predict(word, top_k=1, max_new_tokens=4, api_name="/ask"))
        assert f"[{name} p.1]" in hits, hits
        assert all(other not in hits for other in found.values() if other != name)
