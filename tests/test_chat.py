"""A conversation through the engine: follow-ups searched as standalone questions written from
the history, answered after it; heatmap choices as words; pages of documents deleted since;
the start-up check of both models."""

from __future__ import annotations

import dataclasses

import pytest

from rag.chat import ANSWER_CHARS, HISTORY_TURNS, Turn, from_messages, recent
from rag.errors import DocumentNotFoundError
from rag.pipeline import Pipeline
from rag.view.heatmaps import meaningful_tokens, words_of
from tests.helpers import SAMPLES


def test_history_from_chat_messages_skips_notes_and_files():
    messages = [
        {"role": "user", "content": "Revenue in 2024?"},
        {"role": "assistant", "content": "searched", "metadata": {"title": "searched"}},
        {"role": "assistant", "content": "63.8 M€ [r.pdf p.1]"},
        {"role": "user", "content": {"path": "chart.png"}},  # a file carries no words
        {"role": "user", "content": "And 2023?"},
    ]
    assert from_messages(messages) == (
        Turn("Revenue in 2024?", "63.8 M€ [r.pdf p.1]"),
        Turn("And 2023?", ""),
    )


def test_the_answerer_reads_only_the_latest_turns_each_answer_bounded():
    history = [Turn(f"question {i}", "x " * 2000) for i in range(10)]
    kept = recent(history)
    assert [t.question for t in kept] == [f"question {i}" for i in range(10 - HISTORY_TURNS, 10)]
    assert all(len(t.answer) <= ANSWER_CHARS for t in kept)


def test_tokens_of_one_word_are_one_heatmap_choice(tiny_models):
    from transformers import AutoProcessor

    tokenizer = AutoProcessor.from_pretrained(tiny_models / "colqwen2").tokenizer
    question = "What was the revenue in 2024?"
    ids = tokenizer(question)["input_ids"]
    tokens = meaningful_tokens(tokenizer, ids, question)
    assert [t.text for t in tokens if t.text.isdigit()] == ["2", "0", "2", "4"]  # Qwen's digits
    words = words_of(tokens, question)
    assert [w.text for w in words] == ["What", "was", "the", "revenue", "in", "2024"]
    assert len(words[-1].indices) == 4


@pytest.fixture
def pipeline(answering_settings) -> Pipeline:
    pipeline = Pipeline(answering_settings)
    assert pipeline.add_file(SAMPLES / "annual_report.pdf").status == "indexed"
    return pipeline


def test_a_follow_up_is_searched_as_the_question_the_answerer_rewrote(pipeline):
    history = [Turn("What was the revenue in 2024?", "63.8 million euros.")]
    answer = pipeline.ask("And in 2023?", history=history)
    assert answer.searched == pipeline.answerer.rewrite("And in 2023?", history)
    assert answer.rewritten and answer.history == tuple(history)
    expected = pipeline.retriever.embed_query(answer.searched)
    assert answer.query_embedding.shape == expected.shape  # the rewrite is what was embedded
    assert (answer.query_embedding - expected).abs().max() < 1e-4
    assert "".join(answer.stream()) == answer.text()  # the answer reads the history too

    literal = pipeline.ask("And in 2023?", history=history, rewrite=False)
    assert literal.searched == "And in 2023?" and not literal.rewritten
    assert pipeline.ask("And in 2023?").searched == "And in 2023?"  # no history: as asked


def test_pages_of_a_document_deleted_since_are_refused_by_name(pipeline):
    answer = pipeline.ask("revenue?")
    hit = answer.hits[0]
    assert answer.heatmap_image(hit).size == answer.page_image(hit).size
    fresh = pipeline.ask("revenue?")
    pipeline.delete("annual_report.pdf")
    for call in (fresh.heatmap_image, fresh.page_image, lambda h: fresh.text()):
        with pytest.raises(DocumentNotFoundError, match=r"annual_report\.pdf has been deleted"):
            call(hit)


def test_the_start_up_check_names_each_missing_or_wrong_model(tiny_models, settings):
    good = dataclasses.replace(
        settings,
        retriever=str(tiny_models / "colqwen2"),
        generator=str(tiny_models / "qwen2_vl"),
    )
    assert Pipeline(good).model_problems() == []
    missing = dataclasses.replace(good, retriever=str(settings.data_dir / "nowhere"))
    (problem,) = Pipeline(missing).model_problems()
    assert "nowhere" in problem and "RAG_RETRIEVER" in problem
    swapped = dataclasses.replace(good, generator=good.retriever)
    (problem,) = Pipeline(swapped).model_problems()
    assert "colqwen2" in problem and "RAG_GENERATOR" in problem
    assert Pipeline(swapped).models._answerer is None  # nothing was loaded
