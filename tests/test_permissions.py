"""Who may read what, in the engine, where every surface's permissions are decided: a person
lists, finds, searches, is answered from and reads the pages of exactly the documents they may
read; another's document is "not found", never named; changes are for owners and admins; a
page taken away stops showing at once, even from an answer already on screen.

Words are content the tiny models cannot garble: each document holds a word no other has, and
the words-only ranking (hybrid="text") finds it or not."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from rag.access import ADMIN, Caller
from rag.errors import AccessError, DocumentNotFoundError, RagError, TagError
from rag.index.local import LocalIndex
from rag.index.records import Document
from rag.pipeline import Pipeline
from tests.helpers.corpus import write_page

pytestmark = pytest.mark.models

PASSWORD = "a long enough secret"
# name -> (owner, visibility, its own word)
DOCUMENTS = {
    "ann-notes.pdf": ("ann", "private", "Zephyrine"),
    "budget.pdf": ("ann", "group:finance", "Quillfeather"),
    "salaries.pdf": ("bob", "group:hr", "Marrowdale"),
    "handbook.pdf": ("bob", "everyone", "Brightwater"),
}
READS = {
    "ann": {"ann-notes.pdf", "budget.pdf", "handbook.pdf"},
    "bob": {"salaries.pdf", "handbook.pdf"},
    "cat": {"budget.pdf", "handbook.pdf"},
    "dan": {"handbook.pdf"},
}


@pytest.fixture(scope="module")
def team(tiny_models, tmp_path_factory):
    """A collection with four people (ann and cat in finance, bob in hr, dan in no group) and
    one document of each visibility; (pipeline, {name: Document}, {name: Caller})."""
    root = tmp_path_factory.mktemp("team")
    settings = dataclasses.replace(
        _settings(tiny_models, root / "data"), audit_log=str(root / "audit.jsonl")
    )
    pipeline = Pipeline(settings)
    people = pipeline.people
    for name, groups in [("ann", ["finance"]), ("bob", ["hr"]), ("cat", ["finance"])]:
        people.add(name, PASSWORD, groups=groups)
    people.add("dan", PASSWORD)
    callers = {person.name: person for person in people.list()}
    documents = {}
    for name, (owner, visibility, word) in DOCUMENTS.items():
        path = write_page(root / name, name, [f"The code word is {word}.", "Nothing else."])
        result = pipeline.acting_for(callers[owner]).add_file(path, visibility=visibility)
        assert result.status == "indexed", result.message
        documents[name] = pipeline.index.get(result.doc_id)
    return pipeline, documents, callers


def _settings(tiny_models, data: Path):
    from rag.config import Settings

    return Settings(data_dir=data, retriever=str(tiny_models / "colqwen2"), dpi=36, top_k=4)


def names(documents) -> set[str]:
    return {d.name for d in documents}


def test_each_person_lists_exactly_what_they_may_read(team):
    pipeline, documents, callers = team
    for person, readable in READS.items():
        assert names(pipeline.acting_for(callers[person]).documents()) == readable
    assert names(pipeline.documents()) == set(DOCUMENTS)  # the CLI: an admin
    assert {d.owner for d in documents.values()} == {"ann", "bob"}
    assert documents["budget.pdf"].visibility == "group:finance"


def test_anothers_document_is_not_found_never_named(team):
    pipeline, documents, callers = team
    dan = pipeline.acting_for(callers["dan"])
    secret = documents["ann-notes.pdf"]
    with pytest.raises(DocumentNotFoundError) as by_id:
        dan.find(secret.doc_id)
    with pytest.raises(DocumentNotFoundError) as unknown:
        dan.find("0123456789abcdef")
    # the same words as for an id that does not exist, and nothing of the document
    assert str(by_id.value).replace(secret.doc_id, "X") == str(unknown.value).replace(
        "0123456789abcdef", "X"
    )
    for refused in (
        lambda: dan.find("ann-notes.pdf"),
        lambda: dan.page_image(secret.doc_id, 1),
        lambda: dan.delete(secret.doc_id),
        lambda: dan.tag(secret.doc_id, add=["x"]),
        lambda: dan.share(secret.doc_id, "everyone"),
        lambda: dan.search("anything", docs=[secret.doc_id]),
    ):
        with pytest.raises(DocumentNotFoundError) as caught:
            refused()
        assert "ann-notes" not in str(caught.value) or "'ann-notes.pdf'" in str(caught.value)
    assert pipeline.index.get(secret.doc_id) is not None  # nothing changed


def test_searches_find_only_what_the_asker_may_read(team):
    pipeline, documents, callers = team
    ids = {d.doc_id: name for name, d in documents.items()}
    for person, readable in READS.items():
        view = pipeline.acting_for(callers[person])
        for name, (_, _, word) in DOCUMENTS.items():
            answer = view.asking.ask(word, 4, hybrid="text", caller=callers[person])
            found = {ids[hit.doc_id] for hit in answer.hits}
            assert found <= readable, (person, word, found)
            assert (name in found) == (name in readable), (person, word)
            if name in readable:
                assert answer.hits[0].doc_id == documents[name].doc_id  # the word's own page


def test_a_tag_only_others_carry_is_unknown(team):
    pipeline, documents, callers = team
    pipeline.tag("salaries.pdf", add=["payroll"])  # an admin tags bob's hr document
    with pytest.raises(TagError, match="no document is tagged 'payroll'"):
        pipeline.acting_for(callers["cat"]).search("pay", tags=["payroll"])
    hits = pipeline.acting_for(callers["bob"]).search("pay", tags=["payroll"])
    assert {hit.doc_id for hit in hits} == {documents["salaries.pdf"].doc_id}


def test_changes_are_for_owners_and_admins(team):
    pipeline, documents, callers = team
    cat = pipeline.acting_for(callers["cat"])  # reads budget.pdf, does not own it
    for change in (
        lambda: cat.delete("budget.pdf"),
        lambda: cat.tag("budget.pdf", add=["mine"]),
        lambda: cat.share("budget.pdf", "everyone"),
    ):
        with pytest.raises(AccessError, match="only its owner or an admin may"):
            change()
    assert pipeline.index.get(documents["budget.pdf"].doc_id) == documents["budget.pdf"]
    ann = pipeline.acting_for(callers["ann"])
    assert ann.tag("budget.pdf", add=["q3"]).tags == ("q3",)
    assert ann.tag("budget.pdf", remove=["q3"]).tags == ()


def test_a_visibility_names_real_groups(team):
    pipeline, _, callers = team
    ann = pipeline.acting_for(callers["ann"])
    with pytest.raises(AccessError, match="no group is named 'legal'"):
        ann.share("budget.pdf", "group:legal")
    with pytest.raises(AccessError, match="bad visibility 'team'"):
        ann.share("budget.pdf", "team")
    with pytest.raises(AccessError, match="no group is named"):
        ann.add_file(Path("unused.pdf"), visibility="group:nobody")
    assert pipeline.index.get(pipeline.find("budget.pdf").doc_id).visibility == "group:finance"


def test_made_private_it_disappears_at_once_even_from_an_answer_on_screen(team):
    pipeline, documents, callers = team
    cat, ann = (pipeline.acting_for(callers[name]) for name in ("cat", "ann"))
    budget = documents["budget.pdf"]
    shown = cat.asking.ask("Quillfeather", 4, hybrid="text", caller=callers["cat"])
    hit = next(h for h in shown.hits if h.doc_id == budget.doc_id)
    assert shown.page_image(hit).size and shown.snippet(hit) is not None
    try:
        ann.share("budget.pdf", "private")
        again = cat.asking.ask("Quillfeather", 4, hybrid="text", caller=callers["cat"])
        assert budget.doc_id not in {h.doc_id for h in again.hits}
        assert "budget.pdf" not in names(cat.documents())
        for read in (shown.page_image, shown.snippet, shown.heatmap_image, shown.page_text):
            with pytest.raises(DocumentNotFoundError, match=r"budget\.pdf has been deleted since"):
                read(hit)
    finally:
        ann.share("budget.pdf", "group:finance")
    assert shown.page_image(hit).size  # shared again: readable again


def test_the_same_bytes_another_keeps_private_become_the_askers_own_copy(team, tmp_path):
    pipeline, documents, callers = team
    secret = documents["ann-notes.pdf"]
    path = shutil.copy(Path(secret.source or _file(pipeline, "ann-notes.pdf")), tmp_path)
    dan = pipeline.acting_for(callers["dan"])
    result = dan.add_file(Path(path))
    assert result.status == "indexed"  # not "already indexed": that would tell of ann's
    assert result.doc_id != secret.doc_id
    assert pipeline.index.get(result.doc_id).owner == "dan"
    assert names(dan.documents()) == {"handbook.pdf", "ann-notes.pdf"}
    assert dan.add_file(Path(path)).status == "skipped"  # his own copy, now
    dan.delete(result.doc_id)
    cat = pipeline.acting_for(callers["cat"])  # reads budget.pdf: the same bytes are it
    skipped = cat.add_file(_file(pipeline, "budget.pdf"), tags=["stolen"])
    assert (skipped.status, skipped.doc_id) == ("skipped", documents["budget.pdf"].doc_id)
    assert pipeline.index.get(skipped.doc_id).tags == ()  # not hers to tag


def _file(pipeline: Pipeline, name: str) -> Path:
    """The file the team fixture indexed as ``name``."""
    return pipeline.settings.data_dir.parent / name


def test_every_change_and_question_is_in_the_audit_log(team):
    pipeline, _, callers = team
    log = Path(pipeline.settings.audit_log)
    bob = pipeline.acting_for(callers["bob"])
    bob.share("handbook.pdf", "everyone")
    bob.asking.ask("Brightwater", 2, hybrid="text", caller=callers["bob"])
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    events = {(line["event"], line["who"]) for line in lines}
    assert {
        ("upload", "ann"),
        ("upload", "bob"),
        ("visibility", "bob"),
        ("question", "bob"),
    } <= events
    question = next(line for line in reversed(lines) if line["event"] == "question")
    assert question["question"] == "Brightwater" and question["pages"]
    assert all(line["time"].endswith("Z") or "+" in line["time"] for line in lines)


def test_no_login_means_an_admin_as_before(team):
    pipeline, _, _ = team
    assert pipeline.caller == ADMIN and ADMIN.admin
    nobody = Caller("stranger")
    assert names(pipeline.acting_for(nobody).documents()) == {"handbook.pdf"}


# -- a new version replacing an old one, across a crash ----------------------------------------


_KEPT = contextlib.ExitStack()  # staging folders stay until their test's add renames them


def _staged(index: LocalIndex, doc_id: str, pages: int = 1) -> tuple[Document, Path, list]:
    """A document ready for ``index.add``: its staged page images and random vectors."""
    staged = _KEPT.enter_context(index.staging())
    for number in range(1, pages + 1):
        Image.new("RGB", (32, 32), "white").save(index.page_path(staged, number))
    vectors = [torch.nn.functional.normalize(torch.randn(6, 16), dim=-1) for _ in range(pages)]
    document = Document(doc_id, f"{doc_id}.pdf", pages, "2026-12-03T00:00:00+00:00")
    return document, staged, vectors


def test_a_crash_between_a_new_version_and_the_old_ones_removal_leaves_only_the_new(
    tmp_path, monkeypatch
):
    root = tmp_path / "index"
    index = LocalIndex(root, "tiny")
    old, staged, vectors = _staged(index, "a" * 16)
    assert index.add(dataclasses.replace(old, source="/share/x.pdf"), staged, vectors)
    new, staged, vectors = _staged(index, "b" * 16)
    new = dataclasses.replace(new, source="/share/x.pdf", replaces=old.doc_id)
    # The process dies right after the new version's commit: the old one's removal never runs.
    monkeypatch.setattr(type(index.store), "_finish_replacements", lambda self, retired=None: None)
    assert index.add(new, staged, vectors)
    assert (root / "docs" / old.doc_id).exists()
    monkeypatch.undo()
    restarted = LocalIndex(root, "tiny")
    assert [d.doc_id for d in restarted.documents()] == [new.doc_id]  # exactly one of them
    hits = restarted.search(torch.nn.functional.normalize(torch.randn(3, 16), dim=-1), 10)
    assert {hit.doc_id for hit in hits} == {new.doc_id}
    # The next writer finishes the removal and clears the mark: the old content may come back.
    again, staged, vectors = _staged(restarted, old.doc_id)
    assert restarted.add(again, staged, vectors)
    hits = restarted.search(torch.nn.functional.normalize(torch.randn(3, 16), dim=-1), 10)
    assert {hit.doc_id for hit in hits} == {old.doc_id, new.doc_id}
    assert {d.doc_id for d in restarted.documents()} == {old.doc_id, new.doc_id}
    assert restarted.get(new.doc_id).replaces == ""


def test_a_replacement_in_one_process_removes_the_old_version_at_once(tmp_path):
    index = LocalIndex(tmp_path / "index", "tiny")
    old, staged, vectors = _staged(index, "c" * 16, pages=2)
    index.add(old, staged, vectors)
    new, staged, vectors = _staged(index, "d" * 16)
    assert index.add(dataclasses.replace(new, replaces=old.doc_id), staged, vectors)
    assert [d.doc_id for d in index.documents()] == [new.doc_id]
    assert not (tmp_path / "index" / "docs" / old.doc_id).exists()
    assert index.get(new.doc_id).replaces == ""
    with pytest.raises(RagError):
        index.delete(old.doc_id)


def test_qdrant_searches_only_the_readable_set_too(tiny_models, tmp_path):
    settings = dataclasses.replace(
        _settings(tiny_models, tmp_path / "data"), index="qdrant::memory:"
    )
    pipeline = Pipeline(settings)
    ann, dan = Caller("ann", frozenset({"finance"})), Caller("dan")
    for name, owner, visibility in [
        ("ann-notes.pdf", ann, "private"),
        ("handbook.pdf", dan, "everyone"),
    ]:
        word = DOCUMENTS[name][2]
        path = write_page(tmp_path / name, name, [f"The code word is {word}.", "Nothing else."])
        assert pipeline.acting_for(owner).add_file(path, visibility=visibility).status == "indexed"
    for caller, readable in [(ann, {"ann-notes.pdf", "handbook.pdf"}), (dan, {"handbook.pdf"})]:
        for mode in ("text", "rrf", "off"):
            answer = pipeline.asking.ask("Zephyrine", 4, hybrid=mode, caller=caller)
            # the words alone find the word's own page; pictures rank every readable page
            expected = readable & {"ann-notes.pdf"} if mode == "text" else readable
            assert {hit.name for hit in answer.hits} == expected, (caller.name, mode)
