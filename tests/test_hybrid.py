"""The pages' words: the text layer with its boxes, OCR of scans, the full-text index kept with
the documents, and its fusion with the pictures' ranking.

Random-weight retrievers rank pictures at random, so the text side is tested on content (exact
terms find their page first, on every backend), and fusion is tested as arithmetic.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.fusion import RRF_K, fuse
from rag.index.lexical import FOLDER, OLD_FILE, TextHit
from rag.index.records import Hit
from rag.index.store import load_texts
from rag.ingest import ocr, sandbox
from rag.ingest.text import (
    page_texts,
    parse_bbox_layout,
    read_text_layer,
    readable,
)
from rag.pipeline import Pipeline
from rag.terms import page_terms, question_terms
from rag.words import MAX_WORDS
from tests.helpers import SAMPLES, corpus, pdfs

TESSERACT = shutil.which("tesseract") is not None


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    return corpus.write(tmp_path_factory.mktemp("corpus"))


def budget(seconds: float = 30) -> sandbox.Budget:
    return sandbox.Budget.start(seconds, 1024)


def xhtml(*pages: list[str]) -> str:
    """pdftotext -bbox-layout output for pages of words, 20 words a line, spaced apart."""
    body = ""
    for words in pages:
        lines = ""
        for start in range(0, len(words), 20):
            top = 10 + start  # a line lower for every 20 words
            line = "".join(
                f'<word xMin="{25 * i}" yMin="{top}" xMax="{25 * i + 12}" yMax="{top + 10}">'
                f"{word}</word>"
                for i, word in enumerate(words[start : start + 20])
            )
            lines += f"<line>{line}</line>"
        body += f'<page width="600" height="800"><flow><block>{lines}</block></flow></page>'
    return f'<html xmlns="http://www.w3.org/1999/xhtml"><body><doc>{body}</doc></body></html>'


def test_the_text_layer_gives_every_word_with_its_box(files):
    facts, scan = files
    pages = read_text_layer(facts, len(corpus.PAGES), budget())
    assert sorted(pages) == list(range(1, len(corpus.PAGES) + 1))
    words = {w.text: w for w in pages[1]}
    invoice = words["INV-2024-0173"]
    x0, y0, x1, y1 = invoice.box
    assert 0 < x0 < x1 < 1 and 0 < y0 < y1 < 0.25  # near the top, where it is drawn
    # poppler splits "Bluefinch" at its "fi" ligature; the pieces are joined again.
    assert "Bluefinch" in [w.text for w in pages[6]]
    assert read_text_layer(scan, len(corpus.SCAN_PAGES), budget()) == {}  # pictures only


def test_garbled_empty_and_huge_text_layers(files):
    garbled = ["\ue001\ue002", "\ue003\ufffd", "\ue004"]  # a font without a Unicode map
    pages = parse_bbox_layout(xhtml(["Invoice", "INV-1"], garbled, ["  ", "\x07"]))
    assert [w.text for w in pages[1]] == ["Invoice", "INV-1"]
    assert not readable(pages[2])  # read by OCR instead
    assert pages[3] == ()  # only whitespace and control characters
    huge = parse_bbox_layout(xhtml([f"w{i}" for i in range(MAX_WORDS + 500)]))
    assert len(huge[1]) == MAX_WORDS
    assert parse_bbox_layout("<not xml") == {}


def render(path: Path, folder: Path, settings: Settings) -> tuple:
    """``path``'s info and its page images by page number."""
    info, pages = pdfs.rendered(path, settings, folder)
    return info, {page.page_number: page.path for page in pages}


@pytest.mark.skipif(not TESSERACT, reason="tesseract-ocr is not installed")
def test_a_scan_is_read_by_ocr(files, tmp_path):
    settings = Settings()
    info, images = render(files[1], tmp_path, settings)
    texts = page_texts(files[1], info.pages, images, settings, info.budget)
    assert [t.source for t in texts] == ["ocr", "ocr"]
    assert "R-40917" in texts[0].text and "Kwabena" in texts[1].text
    assert all(0 <= v <= 1 for word in texts[0].words for v in word.box)


def test_without_tesseract_pages_are_found_by_picture_with_one_log_line(
    files, tmp_path, monkeypatch, caplog
):
    settings = Settings(ocr_languages="eng")
    info, images = render(files[1], tmp_path, settings)
    monkeypatch.setattr(ocr, "tesseract", lambda: None)
    monkeypatch.setattr(ocr, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="rag.ingest.ocr"):
        for _ in range(2):
            texts = page_texts(files[1], info.pages, images, settings, info.budget)
    assert [t.source for t in texts] == ["none", "none"]
    assert len([r for r in caplog.records if "tesseract is not installed" in r.message]) == 1


@pytest.mark.skipif(not TESSERACT, reason="tesseract-ocr is not installed")
def test_ocr_past_the_files_time_leaves_the_page_without_words(files, tmp_path):
    settings = Settings()
    info, images = render(files[1], tmp_path, settings)
    spent = sandbox.Budget.start(0.001, 1024)  # the file's time is all but spent
    texts = page_texts(files[1], info.pages, images, settings, spent)
    assert [t.source for t in texts] == ["none", "none"]


def test_rrf_and_weighted_fusion_arithmetic():
    def hit(doc: str, page: int, score: float) -> Hit:
        return Hit(doc, f"{doc}.pdf", page, score, Path(f"{doc}{page}"))

    pictures = [hit("a", 1, 30.0), hit("b", 1, 20.0), hit("c", 1, 10.0)]
    words = [TextHit("c", 1, 8.0), TextHit("d", 1, 4.0)]
    make = lambda t: hit(t.doc_id, t.page_number, 0.0)  # noqa: E731
    fused = {(h.doc_id): h for h in fuse(pictures, words, 4, make)}
    assert fused["c"].score == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 0))  # ranks from 0
    assert fused["a"].score == pytest.approx(1 / (RRF_K + 0))
    assert (fused["c"].visual_score, fused["c"].text_score) == (10.0, 8.0)
    assert (fused["d"].visual_score, fused["a"].text_score) == (None, None)
    ranked = [h.doc_id for h in fuse(pictures, words, 4, make)]
    assert ranked == ["c", "a", "b", "d"]  # c is in both rankings

    weighted = fuse(pictures, words, 4, make, mode="weighted", weight=0.25)
    scores = {h.doc_id: h.score for h in weighted}
    # Each ranking scaled to [0, 1] (worst to best), then 0.75 x picture + 0.25 x words.
    assert scores == pytest.approx({"a": 0.75, "b": 0.375, "c": 0.25, "d": 0.0})
    assert fuse(pictures, [], 2, make) == fuse(pictures, [], 2, make)  # words missing: no error


def test_search_terms_handle_codes_accents_and_cjk():
    assert question_terms("Total of INV-2024-0173?") == ["total", "inv", "2024", "0173"]
    assert question_terms("東京の売上") == ["東", "京", "の", "売", "上"]
    assert question_terms("Ελληνικά RÉSUMÉ Straße") == ["ελληνικα", "resume", "strasse"]
    assert question_terms("   ?!") == [] and question_terms("the of what") == []
    assert page_terms("x" * 65 + " ok") == ["ok"]  # an unbroken run of garbage is no term


def add_corpus(pipeline: Pipeline, files: tuple[Path, Path]) -> Pipeline:
    for path in (*files, SAMPLES / "annual_report.pdf"):
        assert pipeline.add_file(path).status == "indexed"
    return pipeline


@pytest.fixture(scope="module")
def corpus_data(tiny_models, tmp_path_factory, files) -> Path:
    """A local data folder holding the corpus and the annual report, indexed once for the
    module (each test works on its own copy: ``indexed_corpus``)."""
    data = tmp_path_factory.mktemp("corpus-index") / "data"
    retriever = str(tiny_models / "colqwen2")
    settings = Settings(data_dir=data, retriever=retriever, dpi=48, top_k=3, hybrid="text")
    add_corpus(Pipeline(settings), files)
    return data


@pytest.fixture
def indexed_corpus(indexing_settings, files, corpus_data, request) -> Pipeline:
    """A library of the corpus (facts.pdf, scan.pdf) and the annual report, searched by
    pictures and words: a copy of ``corpus_data`` on the local index, or indexed afresh into
    the index the test names."""
    index = getattr(request, "param", "local")
    settings = dataclasses.replace(indexing_settings, top_k=3, hybrid="text", index=index)
    if index != "local":
        return add_corpus(Pipeline(settings), files)
    shutil.copytree(corpus_data, settings.data_dir)
    return Pipeline(settings)


@pytest.mark.parametrize("indexed_corpus", ["local", "qdrant::memory:"], indirect=True)
def test_exact_terms_find_their_page_first(indexed_corpus):
    questions = [(q, "facts.pdf", page) for q, page in corpus.QUESTIONS]
    if TESSERACT:
        questions += [(q, "scan.pdf", page) for q, page in corpus.SCAN_QUESTIONS]
    for question, name, page in questions:
        top = indexed_corpus.search(question)[0]
        assert (top.name, top.page_number) == (name, page), question
        assert top.text_score > 0 and top.visual_score is None
    # A scope limits the words too: the invoice's number is not in the annual report.
    within = indexed_corpus.search("INV-2024-0173", docs=["annual_report.pdf"])
    assert all(hit.name == "annual_report.pdf" for hit in within)
    assert all(hit.text_score is None or "INV" not in hit.name for hit in within)


def test_each_hit_keeps_both_scores_and_off_is_pictures_alone(indexed_corpus):
    fused = indexed_corpus.ask("invoice INV-2024-0173", hybrid="rrf").hits
    assert any(h.visual_score is not None for h in fused)
    assert any(h.text_score is not None for h in fused)
    pictures = indexed_corpus.ask("invoice INV-2024-0173", hybrid="off").hits
    assert all(h.text_score is None and h.visual_score == h.score for h in pictures)


def test_words_are_committed_with_the_document_and_the_index_catches_up(indexed_corpus, tmp_path):
    document = indexed_corpus.find("facts.pdf")
    texts = load_texts(indexed_corpus.index.store.folder(document.doc_id))
    assert [t.page_number for t in texts] == list(range(1, len(corpus.PAGES) + 1))
    # The full-text index is lost (a crash before its insert, a deleted folder): rebuilt.
    indexed_corpus.search_index.lexical.close()
    shutil.rmtree(indexed_corpus.settings.data_dir / "index" / FOLDER)
    again = Pipeline(indexed_corpus.settings)
    assert again.search("Bluefinch budget")[0].page_number == 6
    # A document deleted by another process: its words go at the next search.
    Pipeline(indexed_corpus.settings).delete("facts.pdf")
    assert all(hit.name != "facts.pdf" for hit in again.search("INV-2024-0173 Bluefinch"))


def test_settings_refuse_an_unknown_mode():
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="RAG_HYBRID"):
        Settings.from_env({"RAG_HYBRID": "maybe"})
    with pytest.raises(ConfigError, match="RAG_HYBRID_WEIGHT"):
        dataclasses.replace(Settings(), hybrid_weight=1.5).validated()


def test_matched_words_are_framed_where_they_are_on_the_page(indexed_corpus):
    answer = indexed_corpus.ask("invoice INV-2024-0173")
    top = answer.hits[0]
    page = indexed_corpus.index.page_words(top.doc_id, top.page_number)
    (box,) = [w.box for w in page.words if w.text == "INV-2024-0173"]
    plain = answer.page_image(top)
    framed = answer.view(top, heatmap=False, boxes=True)
    assert framed.size == plain.size
    x = round((box[0] + box[2]) / 2 * plain.width)
    y = round((box[1] + box[3]) / 2 * plain.height)
    margin = (round(box[0] * plain.width) - 8, round(box[1] * plain.height) - 8)
    assert framed.getpixel(margin) == plain.getpixel(margin)  # outside: untouched
    before, after = plain.getpixel((x - 30, y)), framed.getpixel((x - 30, y))
    assert after != before and after[2] >= after[0]  # inside: tinted blue
    marked = [text for text, hit in answer.snippet(top).words if hit]
    assert marked == ["Invoice", "Invoice", "INV-2024-0173"]  # the title, then the line


def test_qdrant_holds_the_words_as_sparse_vectors_and_fuses_them_itself(
    indexing_settings, tmp_path
):
    from rag.index.qdrant import TEXT, QdrantIndex, point_id

    settings = dataclasses.replace(indexing_settings, index="qdrant::memory:")
    pipeline = Pipeline(settings)
    pipeline.add_file(corpus.write_facts(tmp_path / "facts.pdf"))
    pipeline.add_file(SAMPLES / "annual_report.pdf")
    index = pipeline.index
    assert isinstance(index, QdrantIndex)
    doc_id = pipeline.find("facts.pdf").doc_id
    (record,) = index.client.retrieve(
        index.collection, ids=[point_id(doc_id, 1)], with_vectors=[TEXT]
    )
    assert len(record.vector[TEXT].indices) > 5  # the invoice page's words
    assert not (settings.data_dir / "index" / FOLDER).exists()  # no second store of words
    for question, page in corpus.QUESTIONS:
        top = pipeline.ask(question, hybrid="text").hits[0]
        assert (top.name, top.page_number) == ("facts.pdf", page), question
    fused = pipeline.ask("invoice INV-2024-0173", top_k=5).hits
    assert fused[0].score == pytest.approx(
        sum(1 / (RRF_K + rank) for rank in ranks_of(pipeline, fused[0]))
    )
    assert any(h.text_score is not None for h in fused)
    assert all(h.visual_score is not None for h in fused[:1] if h.text_score is None)


def ranks_of(pipeline: Pipeline, hit: Hit) -> list[int]:
    """The 0-based ranks of ``hit`` in each side's own ranking (pictures, words)."""
    ranks = []
    for mode in ("off", "text"):
        ranked = pipeline.ask("invoice INV-2024-0173", top_k=50, hybrid=mode).hits
        keys = [(h.doc_id, h.page_number) for h in ranked]
        if (hit.doc_id, hit.page_number) in keys:
            ranks.append(keys.index((hit.doc_id, hit.page_number)))
    return ranks


def test_a_rare_term_outranks_a_common_one_and_function_words_find_nothing(indexed_corpus):
    # "revenue" is on every page of the annual report; "Bluefinch" on one page of facts.pdf.
    lexical = indexed_corpus.search_index.lexical
    assert {(h.doc_id, h.page_number) for h in lexical.search("revenue", 20)} == {
        (indexed_corpus.find("annual_report.pdf").doc_id, n) for n in (1, 2, 3)
    }
    first, *rest = lexical.search("revenue Bluefinch", 20)
    assert (first.doc_id, first.page_number) == (indexed_corpus.find("facts.pdf").doc_id, 6)
    assert len(rest) == 3 and all(first.score > hit.score > 0 for hit in rest)
    assert lexical.search("the of what", 20) == []  # function words alone: nothing to search


def test_words_of_an_earlier_release_are_replaced_and_another_layout_rebuilt(indexed_corpus):
    root = indexed_corpus.settings.data_dir / "index"
    indexed_corpus.search_index.lexical.close()
    (root / OLD_FILE).write_bytes(b"SQLite format 3\x00")  # FTS5's file, from before tantivy
    shutil.rmtree(root / FOLDER)
    (root / FOLDER).mkdir()
    (root / FOLDER / "meta.json").write_text('{"not": "tantivy"}')
    again = Pipeline(indexed_corpus.settings)
    assert again.search("INV-2024-0173")[0].page_number == 1
    assert not (root / OLD_FILE).exists()


def test_the_answerer_is_given_the_pages_words_when_asked_to(indexed_corpus):
    plain = indexed_corpus.ask("invoice INV-2024-0173")
    assert plain.pages()[0].text == ""  # RAG_ANSWER_WITH_TEXT is off by default
    settings = dataclasses.replace(indexed_corpus.settings, answer_with_text=True)
    answer = Pipeline(settings).ask("invoice INV-2024-0173")
    (top, *_) = answer.pages()
    assert top.label == "[facts.pdf p.1]" and "INV-2024-0173" in top.text
    assert "Text of this page: Invoice" in top.caption


def test_a_word_asked_twice_in_two_cases_is_one_term(indexed_corpus):
    hits = indexed_corpus.search_index.lexical.search("Invoice invoice INVOICE inv-2024-0173", 5)
    assert (hits[0].doc_id, hits[0].page_number) == (indexed_corpus.find("facts.pdf").doc_id, 1)


def test_two_index_objects_bring_the_words_up_to_date_at_once(indexed_corpus):
    # Two processes (here: two index objects on one folder) catching up at the same moment
    # take turns at tantivy's single writer, and neither adds a document twice.
    from concurrent.futures import ThreadPoolExecutor

    indexed_corpus.search_index.lexical.close()
    shutil.rmtree(indexed_corpus.settings.data_dir / "index" / FOLDER)
    first, second = Pipeline(indexed_corpus.settings), Pipeline(indexed_corpus.settings)
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(p.search_index.index_words) for p in (first, second)]:
            done.result()
    facts = indexed_corpus.find("facts.pdf").doc_id
    found = []
    for pipeline in (first, second):
        hits = pipeline.search_index.lexical.search("Bluefinch INV-2024-0173", 50)
        pages = [(h.doc_id, h.page_number) for h in hits]
        assert len(pages) == len(set(pages))  # each page once: no document added twice
        assert {(facts, 1), (facts, 6)} <= set(pages)
        found.append([(page, round(hit.score, 4)) for page, hit in zip(pages, hits, strict=True)])
    assert found[0] == found[1]
