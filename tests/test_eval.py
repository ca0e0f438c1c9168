"""The eval command: the metrics' arithmetic on rankings computable by hand, the questions
file and its bad lines, and, on tiny models, runs over a generated corpus of pages with unique
facts (words-only retrieval must find every page first), a ViDoRe-layout folder and the CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import shutil
from pathlib import Path

import pytest

import app
from rag import Pipeline, Settings
from rag.evaluation import evaluate_questions, evaluate_vidore, metrics
from rag.evaluation.questions import DatasetError, Documents, read_questions, resolve
from rag.evaluation.report import Dataset, as_json, table, write_report
from rag.evaluation.run import Configuration, Options, Outcome, Run, configurations
from rag.evaluation.vidore import read_benchmark
from rag.index.records import Document
from tests.helpers import corpus
from tests.helpers.evaluation import (
    question_lines,
    write_questions,
    write_vidore,
    write_vidore_parquet,
)

PNG = b"\x89PNG\r\n\x1a\n"

# -- arithmetic ------------------------------------------------------------------------------


def test_recall_mrr_and_ndcg_on_a_ranking_computed_by_hand():
    ranking = ["x", "a", "y", "b", "z"]
    key = {"a": 1, "b": 1, "c": 1}  # c is never found
    assert metrics.recall_at(ranking, key, 1) == 0
    assert metrics.recall_at(ranking, key, 2) == pytest.approx(1 / 3)
    assert metrics.recall_at(ranking, key, 5) == pytest.approx(2 / 3)
    assert metrics.reciprocal_rank(ranking, key) == 0.5
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at(ranking, key, 5) == pytest.approx(dcg / ideal)


def test_graded_gains_reward_the_better_page_first():
    key = {"full": 2, "part": 1}
    best = metrics.ndcg_at(["full", "part"], key, 10)
    swapped = metrics.ndcg_at(["part", "full"], key, 10)
    assert best == 1.0
    assert swapped == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    # Binary relevance: the same two pages in either order score alike.
    binary = {"full": 1, "part": 1}
    assert metrics.ndcg_at(["full", "part"], binary, 10) == metrics.ndcg_at(
        ["part", "full"], binary, 10
    )
    # The cut-off: a page found past k counts nothing.
    assert metrics.ndcg_at(["x", "full"], key, 1) == 0.0


def test_ties_and_repeats_count_a_unit_once_at_its_first_place():
    # Documents ranked by their pages: doc a's second page does not push b down.
    ranking = ["a", "a", "b"]
    assert metrics.distinct(ranking) == ["a", "b"]
    assert metrics.recall_at(ranking, {"b": 1}, 2) == 1.0
    assert metrics.reciprocal_rank(ranking, {"b": 1}) == 0.5
    # Equal grades tie in the ideal ranking: either order of them is ideal.
    assert metrics.ndcg_at(["b", "a"], {"a": 2, "b": 2}, 2) == 1.0


def test_a_question_without_relevant_pages_is_not_scored_nor_averaged():
    scores = metrics.retrieval_scores(["a"], {"a": 0})
    assert set(scores.values()) == {None}
    assert metrics.mean([1.0, None, 0.5]) == 0.75


def test_exact_match_and_f1_use_squad_normalisation():
    assert metrics.normalize_answer("The  Oduya-Logistics, Inc.") == "oduyalogistics inc"
    assert metrics.exact_match("the Oduya Logistics.", ["Oduya logistics"]) == 1.0
    assert metrics.exact_match("Oduya", ["Oduya Logistics"]) == 0.0
    # 2 shared of 3 said and 2 wanted: p 2/3, r 1 -> f1 0.8; the best reference counts.
    assert metrics.token_f1("by Oduya Logistics", ["x", "Oduya Logistics"]) == pytest.approx(0.8)
    assert metrics.token_f1("nothing alike", ["Oduya"]) == 0.0


def test_timings_summary():
    assert metrics.timing_summary([]) is None
    summary = metrics.timing_summary([0.1, 0.2, 0.3, 0.4, 10.0])
    assert summary["p50"] == pytest.approx(0.3)
    assert summary["mean"] == pytest.approx(2.2)
    assert summary["p95"] == pytest.approx(0.4 + 0.8 * 9.6)


# -- the questions file ----------------------------------------------------------------------


def document(name: str, pages: int, doc_id: str | None = None) -> Document:
    return Document(doc_id or f"id-{name}", name, pages, "2026-01-01T00:00:00+00:00")


def test_bad_lines_are_one_line_each_and_the_rest_is_read(tmp_path):
    lines = [
        question_lines()[0],
        "{not json",
        json.dumps({"pages": [{"document": "facts.pdf", "page": 1}]}),
        "",
        "# a comment",
        json.dumps({"question": "q", "pages": [{"document": "facts.pdf", "page": 0}]}),
        json.dumps({"question": "q", "pages": [{"document": "facts.pdf", "page": 1, "grade": 7}]}),
        json.dumps(["a list"]),
        question_lines()[1],
    ]
    questions, problems = read_questions(write_questions(tmp_path / "q.jsonl", lines))
    assert [q.where for q in questions] == ["q.jsonl line 1", "q.jsonl line 9"]
    assert problems == [
        "q.jsonl line 2: not JSON (Expecting property name enclosed in double quotes, "
        "column 2); skipped",
        'q.jsonl line 3: no "question" (a non-empty string); skipped',
        "q.jsonl line 6: page 0 of facts.pdf is not a page number (1, 2, ...); skipped",
        "q.jsonl line 7: grade 7 is not 0, 1, 2 or 3; skipped",
        "q.jsonl line 8: not a JSON object; skipped",
    ]


def test_an_empty_file_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="no questions"):
        read_questions(write_questions(tmp_path / "empty.jsonl", ["", "  "]))


def test_unknown_documents_and_pages_out_of_range_are_named(tmp_path):
    lines = [
        json.dumps({"question": "a", "pages": [{"document": "facts.pdf", "page": 6, "grade": 2}]}),
        json.dumps({"question": "b", "pages": [{"document": "nowhere.pdf", "page": 1}]}),
        json.dumps({"question": "c", "pages": [{"document": "facts.pdf", "page": 9}]}),
        json.dumps({"question": "d", "documents": ["id-other.pdf"]}),
        json.dumps({"question": "e"}),
        json.dumps({"question": "f", "answer": ["x", "y"]}),
    ]
    questions, _ = read_questions(write_questions(tmp_path / "k.jsonl", lines))
    named = Documents([document("facts.pdf", 6), document("other.pdf", 2)])
    keyed, problems = resolve(questions, named)
    assert problems == [
        "k.jsonl line 2: no document 'nowhere.pdf' is indexed (app.py list shows those that "
        "are); skipped",
        "k.jsonl line 3: facts.pdf has 6 pages: there is no page 9; skipped",
        "k.jsonl line 5: no pages, documents or answer to score against; skipped",
    ]
    assert keyed[0].key == {("id-facts.pdf", 6): 2} and keyed[0].level == "page"
    assert keyed[1].key == {"id-other.pdf": 1} and keyed[1].level == "document"
    assert keyed[2].key == {} and keyed[2].question.answers == ("x", "y")


def test_the_reranker_doubles_the_configurations_once_one_is_set():
    plain = configurations(Settings(), ["off", "text"])
    assert [c.name for c in plain] == ["off", "text"]

    @dataclasses.dataclass
    class WithReranker:
        reranker: str = "text:some/model"

    both = configurations(WithReranker(), ["off", "text"])
    assert [c.name for c in both] == ["off", "text", "off+rerank", "text+rerank"]
    with pytest.raises(Exception, match="sideways"):
        configurations(Settings(), ["sideways"])


# -- the report, on a run made by hand -------------------------------------------------------


def handmade_run() -> Run:
    questions, _ = read_questions_from(question_lines()[:2])
    named = Documents([document("facts.pdf", 6, "f")])
    keyed, _ = resolve(questions, named)
    chosen = [Configuration("off"), Configuration("text")]
    run = Run(chosen, keyed, Options())
    rankings = {
        "off": [[("f", 1), ("f", 2)], [("f", 1), ("f", 2)]],
        "text": [[("f", 1)], [("f", 2)]],
    }
    for name, per_question in rankings.items():
        run.outcomes[name] = []
        for ranking, each in zip(per_question, keyed, strict=True):
            outcome = Outcome(
                ranking=[{"doc_id": d, "name": "facts.pdf", "page": p} for d, p in ranking]
            )
            outcome.scores = metrics.retrieval_scores(ranking, each.key)
            outcome.first_relevant = metrics.first_relevant(ranking, each.key)
            outcome.times = {"search": 0.25}
            run.outcomes[name].append(outcome)
    return run


def read_questions_from(lines: list[str], folder: Path | None = None):
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        return read_questions(write_questions(Path(folder or scratch) / "questions.jsonl", lines))


def test_the_table_json_and_report_of_a_run(tmp_path):
    run = handmade_run()
    off, text = run.configurations
    assert run.metrics(off)["recall@1"] == 0.5 and run.metrics(off)["mrr"] == 0.75
    assert run.metrics(text)["recall@1"] == 1.0
    assert run.metric_names == list(metrics.retrieval_scores([], {"a": 1}))
    lines = table(run).splitlines()
    assert lines[0].split() == ["configuration", *run.metric_names, "search", "s"]
    assert lines[1].split()[:3] == ["off", "0.500", "1.000"]

    dataset = Dataset("questions.jsonl", 2)
    record = json.loads(json.dumps(as_json(run, Settings(), dataset)))
    assert set(record) == {"settings", "dataset", "configurations", "questions"}
    assert [c["name"] for c in record["configurations"]] == ["off", "text"]
    assert record["configurations"][0]["timings"]["search"] == {
        "mean": 0.25,
        "p50": 0.25,
        "p95": 0.25,
    }
    second = record["questions"][1]
    assert second["key"] == [{"unit": ["f", 2], "grade": 1}]
    assert second["results"]["off"]["first_relevant"] == 2

    report = write_report(run, Settings(), dataset, tmp_path / "report")
    text_report = report.read_text()
    assert "| off | 0.500 | 1.000 |" in text_report
    assert "![metric by configuration](metrics.png)" in text_report
    assert "off: questions.jsonl line 2" in text_report  # the miss, named
    assert (tmp_path / "report" / "metrics.png").read_bytes().startswith(PNG)


# -- on tiny models --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def facts_data(tiny_models, tmp_path_factory) -> Path:
    """A data folder holding the generated corpus (facts.pdf: six pages, a fact each),
    indexed once for the module by the tiny ColQwen2."""
    folder = tmp_path_factory.mktemp("eval-corpus")
    settings = Settings(data_dir=folder / "data", retriever=str(tiny_models / "colqwen2"), dpi=48)
    result = Pipeline(settings).add_file(corpus.write_facts(folder / "facts.pdf"))
    assert result.status == "indexed"
    return folder / "data"


@pytest.fixture
def facts(facts_data, indexing_settings) -> Pipeline:
    """A copy of the indexed corpus for one test."""
    shutil.copytree(facts_data, indexing_settings.data_dir)
    return Pipeline(indexing_settings)


@pytest.mark.models
def test_words_only_finds_every_page_first_and_every_mode_runs(facts, tmp_path):
    path = write_questions(tmp_path / "questions.jsonl")
    said = []
    modes = ["off", "text", "rrf", "weighted"]
    evaluation = evaluate_questions(facts, path, modes, Options(top_k=10), said=said.append)
    run = evaluation.run
    assert said == [] and len(run.questions) == 6
    by_name = {c.name: run.metrics(c) for c in run.configurations}
    assert by_name["text"]["recall@1"] == 1.0 and by_name["text"]["ndcg@10"] == 1.0
    for name, found in by_name.items():  # random pictures: the arithmetic holds still
        assert set(found) == {"recall@1", "recall@5", "recall@10", "mrr", "ndcg@5", "ndcg@10"}
        assert all(0 <= value <= 1 for value in found.values()), name
        assert found["recall@10"] == 1.0  # six pages, ten retrieved: all found
        outcomes = run.outcomes[name]
        assert found["mrr"] == pytest.approx(sum(1 / o.first_relevant for o in outcomes) / 6)
        # The words find only the pages that share some: up to six.
        assert all(1 <= len(o.ranking) <= 6 and o.times["search"] > 0 for o in outcomes)
    record = json.loads(json.dumps(evaluation.json()))
    assert record["dataset"] == {
        "source": str(path), "read": 6, "problems": [], "note": "", "evaluated": 6
    }  # fmt: skip
    assert record["settings"]["configurations"] == modes
    report = evaluation.write_report(tmp_path / "report")
    assert report.name == "report.md" and "| text | 1.000 |" in report.read_text()
    assert (tmp_path / "report" / "metrics.png").read_bytes().startswith(PNG)


@pytest.mark.models
def test_answers_are_scored_and_judged(facts, tiny_models, tmp_path):
    settings = dataclasses.replace(
        facts.settings,
        generator=str(tiny_models / "qwen2_vl"),
        max_new_tokens=4,
        top_k=1,
        answer_min_pixels=28 * 28 * 4,
        answer_max_pixels=28 * 28 * 64,
    )
    path = write_questions(tmp_path / "questions.jsonl", question_lines()[:2])
    evaluation = evaluate_questions(
        Pipeline(settings), path, ["text"], Options(top_k=3, answers=True, judge=True)
    )
    (configuration,) = evaluation.run.configurations
    found = evaluation.run.metrics(configuration)
    assert 0 <= found["exact_match"] <= found["f1"] <= 1  # random words: the range holds
    assert found["judge"] is None or 0 <= found["judge"] <= 1  # a tiny judge rarely says yes/no
    for outcome in evaluation.run.outcomes["text"]:
        assert isinstance(outcome.answer, str) and isinstance(outcome.judge_reply, str)
        assert set(outcome.times) == {"search", "answer", "judge"}
    assert set(evaluation.run.timings(configuration)) == {"search", "answer", "judge"}


@pytest.mark.models
def test_with_a_reranker_each_mode_runs_with_and_without_it(facts, tiny_models, tmp_path):
    reranker = f"text:{tiny_models / 'xlm_roberta_reranker'}"
    settings = dataclasses.replace(facts.settings, reranker=reranker, rerank_depth=6)
    path = write_questions(tmp_path / "questions.jsonl", question_lines()[:3])
    evaluation = evaluate_questions(Pipeline(settings), path, ["text"], Options(top_k=6))
    names = [c.name for c in evaluation.run.configurations]
    assert names == ["text", "text+rerank"]
    plain, reranked = (evaluation.run.outcomes[name] for name in names)
    for before, after in zip(plain, reranked, strict=True):
        # The same pages, reordered by the reranker: its score beside the first stage's.
        assert {tuple(p.values()) for p in before.ranking} == {
            tuple(p.values()) for p in after.ranking
        }
        assert "rerank" in after.times or after.times["search"] > 0
    assert evaluation.run.metrics(evaluation.run.configurations[0])["recall@1"] == 1.0
    assert "text+rerank" in evaluation.write_report(tmp_path / "report").read_text()


@pytest.mark.models
def test_evidence_boxes_overlap_the_reference_box_of_the_words_that_answer(facts, tmp_path):
    """On content: the page's own words draw the evidence boxes, so a reference box around
    the line holding the question's words overlaps them, and one elsewhere does not."""
    question, page = corpus.QUESTIONS[0]  # the invoice's total, on page 1
    doc_id = facts.documents()[0].doc_id
    words = facts.index.page_words(doc_id, page).words
    line = [w.box for w in words if w.text in ("INV-2024-0173", "Invoice")]
    around = [min(b[0] for b in line), min(b[1] for b in line)]
    around += [max(b[2] for b in line), max(b[3] for b in line)]
    elsewhere = [0.0, 0.9, 0.1, 1.0]
    lines = [
        json.dumps(
            {
                "question": question,
                "pages": [{"document": "facts.pdf", "page": page}],
                "boxes": [{"document": "facts.pdf", "page": page, "box": box}],
            }
        )
        for box in (around, elsewhere)
    ]
    path = write_questions(tmp_path / "boxes.jsonl", lines)
    evaluation = evaluate_questions(facts, path, ["text"], Options(top_k=3))
    hit, miss = (o.scores["box_overlap"] for o in evaluation.run.outcomes["text"])
    assert 0 < hit <= 1 and miss == 0
    assert "box_overlap" in evaluation.run.metrics(evaluation.run.configurations[0])


@pytest.mark.models
def test_a_vidore_folder_is_indexed_and_scored(indexing_settings, tmp_path):
    folder = write_vidore(tmp_path / "vidore")
    pipeline = Pipeline(indexing_settings)
    pipeline.add_file(corpus.write_facts(tmp_path / "other.pdf"))  # never in the results
    said = []
    evaluation = evaluate_vidore(
        pipeline, folder, ["off"], Options(top_k=10), index_corpus=True, said=said.append
    )
    assert said == ["handbook: indexed, 2 pages", "survey: indexed, 1 page"]
    run = evaluation.run
    # English queries with relevant pages: 0, 1, 2 (3 is French, 4 has none).
    assert [k.question.id for k in run.questions] == ["0", "1", "2"]
    assert run.questions[1].key == {
        (pipeline.find("handbook").doc_id, 2): 2, (pipeline.find("handbook").doc_id, 1): 1
    }  # fmt: skip
    for keyed, outcome in zip(run.questions, run.outcomes["off"], strict=True):
        assert {hit["name"] for hit in outcome.ranking} <= {"handbook", "survey"}
        units = [(hit["doc_id"], hit["page"]) for hit in outcome.ranking]
        assert len(units) == 3
        assert outcome.scores["ndcg@10"] == pytest.approx(metrics.ndcg_at(units, keyed.key, 10))
    (configuration,) = run.configurations
    assert 0 < run.metrics(configuration)["ndcg@10"] <= 1
    assert "leaderboard" in evaluation.json()["dataset"]["note"]
    # The boxes, page-relative: 20..380 of 400 wide, 30..90 of 560 high.
    box = run.questions[0].question.boxes[0]
    assert box.box == pytest.approx((0.05, 30 / 560, 0.95, 90 / 560))
    # Every language: the French query joins.
    again = evaluate_vidore(pipeline, folder, ["off"], Options(), language="all")
    assert [k.question.id for k in again.run.questions] == ["0", "1", "2", "3"]


@pytest.mark.models
def test_vidores_parquet_tables_read_as_their_json_lines_export(indexing_settings, tmp_path):
    """The layout as published: parquet tables, page images as bytes in the corpus rows."""
    published = write_vidore_parquet(tmp_path / "published")
    pipeline = Pipeline(indexing_settings)
    evaluation = evaluate_vidore(pipeline, published, ["off"], Options(), index_corpus=True)
    exported = evaluate_vidore(pipeline, published / "plain", ["off"], Options())
    assert [k.question.id for k in evaluation.run.questions] == ["0", "1", "2"]
    for keyed, same in zip(evaluation.run.questions, exported.run.questions, strict=True):
        assert keyed.key == same.key and keyed.question.boxes == same.question.boxes
    assert [d.name for d in pipeline.documents()] == ["handbook", "survey"]


def test_a_folder_in_another_layout_says_what_was_expected(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "readme.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"no corpus table; expected corpus/, queries/"):
        read_benchmark(tmp_path / "stuff")
    parquet = tmp_path / "hub"
    for table_name in ("corpus", "queries", "qrels"):
        (parquet / table_name).mkdir(parents=True)
        (parquet / table_name / "test-00000-of-00001.parquet").write_bytes(b"PAR1")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(DatasetError, match=r"parquet files need pyarrow .* JSON Lines"):
            read_benchmark(parquet)


# -- the command line ------------------------------------------------------------------------


def cli(data: Path, retriever: Path):
    """``run(*args)``: app.py in this process over ``data``: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RAG_DPI", "48")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = app.main([*args, f"--retriever={retriever}", f"--data-dir={data}"])
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.mark.models
def test_the_eval_command_end_to_end(facts, tiny_models, tmp_path):
    run = cli(facts.settings.data_dir, tiny_models / "colqwen2")
    lines = [*question_lines(), "{broken", json.dumps({"question": "x", "documents": ["nope.pdf"]})]
    path = write_questions(tmp_path / "questions.jsonl", lines)
    code, out, err = run("eval", str(path), "--modes", "text,off", "--report", str(tmp_path / "r"))
    assert code == 0, err
    assert "questions.jsonl line 7: not JSON" in err
    assert "questions.jsonl line 8: no document 'nope.pdf' is indexed" in err
    header, text_row, off_row = out.strip().splitlines()
    assert header.split()[:2] == ["configuration", "recall@1"]
    assert text_row.split()[:2] == ["text", "1.000"] and off_row.split()[0] == "off"
    assert (tmp_path / "r" / "report.md").is_file()
    assert (tmp_path / "r" / "metrics.png").read_bytes().startswith(PNG)

    code, out, err = run("eval", str(path), "--modes", "text", "--json", "--top-k", "3")
    record = json.loads(out)
    assert code == 0 and record["settings"]["retrieved"] == 3
    assert record["configurations"][0]["metrics"]["recall@1"] == 1.0
    assert len(record["questions"]) == 6 and len(record["dataset"]["problems"]) == 2


@pytest.mark.models
def test_the_eval_command_refuses_what_cannot_be_evaluated(tiny_models, tmp_path):
    run = cli(tmp_path / "empty-data", tiny_models / "colqwen2")
    questions = write_questions(tmp_path / "questions.jsonl")
    code, out, err = run("eval", str(questions))
    assert (code, out) == (1, "") and err.startswith("error: no documents are indexed in")
    assert len(err.splitlines()) == 1
    empty = write_questions(tmp_path / "empty.jsonl", [])
    assert run("eval", str(empty))[2].endswith("no questions (the file is empty)\n")
    assert run("eval")[2] == "error: give either a questions file or --vidore FOLDER\n"
    with pytest.raises(SystemExit) as usage:  # argparse's usage error: exit status 1
        run("eval", "--modes", "sideways", str(questions))
    assert usage.value.code == 1
    code, _, err = run("eval", "--vidore", str(tmp_path))
    assert code == 1 and "expected corpus/, queries/ and qrels/" in err
