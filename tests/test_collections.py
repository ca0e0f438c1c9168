"""Collections of the pipeline (public sessions): made, dropped whole with their vectors, and a
previous run's leftovers removed, all through the engine (ui/ never touches its folders)."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.pipeline import COLLECTIONS, Pipeline
from tests.helpers import vectors


def add_document(pipeline: Pipeline, doc_id: str) -> None:
    vectors.add(pipeline.index, doc_id, vectors.pages(0, 2), name="a.pdf")


@pytest.mark.parametrize("index", ["local", "qdrant::memory:"])
def test_a_collection_is_dropped_with_its_vectors_and_folder(tmp_path, index, monkeypatch):
    library = Pipeline(Settings(data_dir=tmp_path / "data", index=index))
    session = library.collection("session-1", max_documents=5)
    assert session.settings.max_documents == 5
    assert session.settings.data_dir == tmp_path / "data" / COLLECTIONS / "session-1"
    add_document(session, "aaaa")
    assert [d.doc_id for d in session.documents()] == ["aaaa"]
    client = getattr(session.index, "client", None)
    if client is not None:  # keep Qdrant's client open to look at it afterwards
        monkeypatch.setattr(client, "close", lambda: None)
    session.drop()
    assert not session.settings.data_dir.exists()
    if client is not None:  # the vectors outside the folder went too
        assert not client.collection_exists(session.index.collection)


def test_leftover_collections_of_a_previous_run_are_dropped(tmp_path):
    library = Pipeline(Settings(data_dir=tmp_path / "data"))
    for name in ("session-1", "session-2"):
        add_document(library.collection(name), "aaaa")
    add_document(library, "bbbb")  # the library's own documents stay
    (tmp_path / "data" / COLLECTIONS / "junk").mkdir()  # not an index at all
    Pipeline(Settings(data_dir=tmp_path / "data")).drop_collections()
    assert not (tmp_path / "data" / COLLECTIONS).exists()
    assert [d.doc_id for d in library.documents()] == ["bbbb"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".", "x" * 65])
def test_collection_names_cannot_leave_the_data_dir(tmp_path, name):
    with pytest.raises(ValueError, match="not a collection name"):
        Pipeline(Settings(data_dir=tmp_path)).collection(name)
