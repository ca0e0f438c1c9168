"""The benchmarks run end to end at tiny sizes. Each test checks the data a benchmark measures
(its ``run`` or ``main`` returns it), and that its report renders from that data; none parses
Markdown to read a measurement back. No figure is checked against a time: the benchmarks report
ratios to references measured in the same run.

The runs are marked ``scale`` (a slow tier: whole benchmarks, models at published widths,
fresh processes); the pure checks (synthetic pages, helpers, reporters, where reports go) are
not.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmarks import report, search

scale = pytest.mark.scale

BENCHMARKS = Path(search.__file__).parent
# Every benchmark with a command line, and its report's file name under benchmarks/out/.
COMMANDS = (
    "dtype", "full_size", "hybrid", "indexing", "latency", "lexical", "popcount", "remote",
    "scale", "search", "sweep",
)  # fmt: skip


def published(module, out: Path, result) -> str:
    """The report ``main`` wrote to ``out``: exactly the module's reporter on the data."""
    text = out.read_text()
    assert text == module.report(result)
    return text


# -- where reports go ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", COMMANDS)
def test_no_benchmark_writes_over_the_committed_results_by_default(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert module.parse_args([]).out is None  # then benchmarks/out/<RESULTS>, git-ignored
    assert module.RESULTS.startswith("results") and module.RESULTS.endswith(".md")
    named = module.parse_args(["--out", f"benchmarks/{module.RESULTS}"]).out
    assert named == Path("benchmarks") / module.RESULTS  # replaced only when named


def test_a_report_goes_to_out_or_else_to_the_ignored_out_folder(tmp_path, monkeypatch, capsys):
    assert report.OUT == BENCHMARKS / "out"
    named = report.publish("# report\n", tmp_path / "deep" / "r.md", "results-x.md")
    assert named == tmp_path / "deep" / "r.md" and named.read_text() == "# report\n"
    monkeypatch.setattr(report, "OUT", tmp_path / "out")
    default = report.publish("# other\n", None, "results-x.md")
    assert default == tmp_path / "out" / "results-x.md" and default.read_text() == "# other\n"
    printed = capsys.readouterr()
    assert printed.out.count("# report") == 1 and str(default) in printed.err  # its path, told
    committed = {path.name for path in BENCHMARKS.glob("results*.md")}
    ignored = (BENCHMARKS.parent / ".gitignore").read_text().splitlines()
    assert "/benchmarks/out/" in ignored and "results.md" in committed


def test_no_benchmark_imports_the_tests():
    for path in BENCHMARKS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "tests" or n.startswith("tests.") for n in names), path.name


def test_a_table_has_its_header_rule_and_rows():
    lines = report.table([("a", 1), ("b", 2.5)], ("name", "value"), "lr")
    assert lines == ["| name | value |", "|---|---:|", "| a | 1 |", "| b | 2.5 |"]
    assert report.table([], ("x", "y", "z"), "r")[1] == "|---:|---|---|"  # left by default
    assert report.header("Title", "one", "two") == ["# Title", "", "- one", "- two"]


# -- search -------------------------------------------------------------------------------------


@scale
def test_search_benchmark_measures_every_mode(tmp_path):
    out = tmp_path / "r.md"
    result = search.main(["--pages", "200", "--queries", "2", "--out", str(out)])
    rows = {row.mode: row for row in result.rows}
    expected = set(search.MODES) | ({search.CUDA_MODE} if torch.cuda.is_available() else set())
    assert set(rows) == expected | {m for m in rows if m.startswith(f"{search.CUDA_MODE},")}
    for mode, row in rows.items():
        assert row.pages_per_s > 0
        if mode in search.BOUNDS:  # a bound ranks nothing
            assert math.isnan(row.overlap) and math.isnan(row.vs_exact)
        else:
            assert 0.0 <= row.overlap <= 1.0
    assert rows["exact-fp32"].overlap == 1.0
    assert rows["exact-bf16"].vs_exact == 1.0  # against itself
    # the same queries within 1% of the documents (at least one: 10%, 20 pages here)
    assert [s.mode for s in result.scoped] == ["exact-bf16", "binary-prefilter+rerank"]
    for scoped in result.scoped:
        assert scoped.unscoped_s > 0 and scoped.scoped_s > 0
        assert scoped.overlap == 1.0 and not scoped.outside  # exact in scope, nothing outside
        assert scoped.scope_pages == 20 and scoped.pages == 200
    # the compute bound is the measured peak over a query's FLOPs: 2 x 20 tokens x 1030 x 128
    bound = rows["bf16-compute-bound"].pages_per_s
    assert result.peak_gflops > 0
    assert bound == pytest.approx(result.peak_gflops * 1e9 / (2 * 20 * 1030 * search.DIM))
    assert result.corpus["tokens"] == 200 * 1030  # colpali pages: 1030 tokens each
    text = published(search, out, result)
    assert "machine:" in text and "--pages 200" in text and "Search within documents" in text


def test_synthetic_pages_are_deterministic_and_normalised():
    corpus = search.Corpus(5, "colqwen", seed=1)
    page = corpus.page(3)
    assert page.shape == (corpus.lengths[3], search.DIM)
    assert 600 <= page.shape[0] <= 800
    assert np.allclose(np.linalg.norm(page, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(page, search.Corpus(5, "colqwen", seed=1).page(3))
    query = corpus.query(3, n_tokens=20)
    assert query.shape == (20, search.DIM)
    # the query comes from its target page: that page is its best match
    scores = [
        float((query @ torch.from_numpy(corpus.page(i)).T).max(1).values.sum()) for i in range(5)
    ]
    assert int(np.argmax(scores)) == 3


def test_chunks_cover_every_page_once():
    lengths = np.array([5, 7, 3, 9, 1, 4])
    chunks = list(search._chunks(lengths, 10))
    assert chunks[0][0] == 0
    assert chunks[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))


def test_top_rows_breaks_ties_by_lower_row():
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0], np.float32)
    assert search.top_rows(scores, 2).tolist() == [1, 2]
    assert search.top_rows(scores, 10).tolist() == [1, 2, 4, 3, 0]


def test_search_report_renders_a_bound_without_an_overlap():
    """The reporter alone, on made-up data: ratios to the reference, a dash for a bound."""
    args = search.parse_args(["--pages", "10", "--queries", "1"])
    rows = [
        search.Row("reference", 100.0, 10.0, 1.0, "colpali-engine", 10, vs_exact=1.0),
        search.Row("exact-bf16", 400.0, 10.0, 1.0, "ours", 10, vs_exact=1.0),
        search.Row("bf16-compute-bound", 800.0, 10.0, math.nan, "a bound", 10),
    ]
    corpus = {"tokens": 10_300, "pages_per_doc": 20, "doc_topics": 12, "n_centroids": 512}
    corpus |= {"topics_per_page": 6, "background_share": 0.3}
    result = search.Result(args, "a machine", rows, [], corpus, 1.0, "identical", 50.0)
    text = search.report(result)
    assert "| exact-bf16 | 400 | 4.0 | 1.00 | 10 | 1.000 | 1.000 | ours |" in text
    assert "| bf16-compute-bound | 800 | 8.0 | 2.00 | 10 | - | - | a bound |" in text
    assert "--out" not in text  # no --out: the command names none


# -- scale and sweep ----------------------------------------------------------------------------


@scale
def test_scale_benchmark_builds_reopens_and_queries_a_binary_index(tmp_path):
    from benchmarks import scale

    out = tmp_path / "scale.md"
    folder = tmp_path / "index"
    arguments = ["--pages", "45", "--pages-per-doc", "10", "--queries", "3", "--rerank", "50"]
    result = scale.main([*arguments, "--dir", str(folder), "--out", str(out)])
    served = result.served
    assert served["pages"] == 45  # counted by the reopened index
    modes = {mode: served["modes"][mode] for mode in scale.MODES}
    assert all(modes.values())  # the same index in each search mode: exact fits here
    assert modes["auto"]["runs_as"] == "exact"  # 45 pages: under auto's switch to binary
    for row in modes.values():  # top-10 overlap over every page and within the scope
        assert row["overlap"] == row["scoped"]["overlap"] == 1.0 and row["scoped"]["ms"] > 0
    assert served["overlap"] == 1.0  # the rerank covers all
    assert len(served["ms"]) == len(served["warm_ms"]) == 3  # each query, in both passes
    assert "too few pages for the 64-bit pass" in result.stage  # 45 pages
    assert len(served["stage_ms"]) == len(served["scan_ms"]) == 3
    assert result.built["disk_bytes"] > 0 and result.built["seconds"] > 0
    assert not folder.exists()  # removed unless --keep
    text = published(scale, out, result)
    assert "45 synthetic colqwen pages" in text and "Search modes on this index" in text


@scale
def test_sweep_benchmark_reports_every_rerank_and_prefilter_pair(tmp_path):
    from benchmarks import sweep

    out = tmp_path / "sweep.md"
    arguments = ["--pages", "120", "--queries", "2", "--reranks", "5,120", "--prefilters", "0,3"]
    result = sweep.main([*arguments, "--out", str(out)])
    assert [(pair.rerank, pair.prefilter, pair.keeps) for pair in result.pairs] == [
        (5, 0, None),
        (5, 3, 15),  # 15 <= 120 / 4
        (120, 0, None),
        (120, 3, None),  # would keep 360: more than there are
    ]
    assert all(0.0 <= pair.overlap <= 1.0 and pair.ms >= 0 for pair in result.pairs)
    assert result.pairs[2].overlap == 1.0  # every page reranked exactly: the top 10 are found
    assert result.pages == 120
    text = published(sweep, out, result)
    assert "| 5 | 3 | keeps 15 |" in text and "| 120 | 3 | off |" in text


# -- words: lexical and hybrid ------------------------------------------------------------------


@scale
def test_lexical_benchmark_times_tantivy_and_fts5_on_the_same_pages(tmp_path):
    from benchmarks import lexical

    out = tmp_path / "lexical.md"
    arguments = ["--pages", "200,400", "--words", "40", "--queries", "3"]
    result = lexical.main([*arguments, "--out", str(out)])
    assert [size["pages"] for size in result.sizes] == [200, 400]
    for size in result.sizes:
        for figure in ("tantivy", "fts5", "fts5_pruned", "tantivy_mb", "fts5_mb"):
            assert size[figure] > 0, figure
        assert size["tantivy_build"] > 0 and size["fts5_build"] > 0
    text = published(lexical, out, result)
    assert "| 200 |" in text and "| 400 |" in text


@scale
def test_hybrid_benchmark_times_pictures_words_and_both_on_one_index(tmp_path):
    from benchmarks import hybrid

    out = tmp_path / "hybrid.md"
    arguments = ["--pages", "40", "--pages-per-doc", "10", "--words", "30", "--queries", "3"]
    result = hybrid.main([*arguments, "--dir", str(tmp_path), "--out", str(out)])
    (size,) = result.sizes
    assert size["pages"] == 40 and size["mode"] == "exact"  # auto, under its switch to binary
    for figure in ("pictures", "hybrid", "words", "build_s", "first_s", "words_mb"):
        assert size[figure] > 0, figure
    assert list(tmp_path.glob("hybrid-bench-*")) == []  # the index is removed
    text = published(hybrid, out, result)
    assert "| 40 | exact |" in text


@scale
def test_remote_benchmark_times_the_first_token_against_a_local_server(tmp_path):
    from benchmarks import remote

    out = tmp_path / "remote.md"
    result = remote.main(["--top-k", "2", "--repeats", "1", "--out", str(out)])
    assert [row.what.strip("*").split(",")[0] for row in result.rows] == [
        "pages encoded (PNG",
        "pages encoded",
        "first token",
        "first token",
    ]
    assert all(row.median_ms > 0 for row in result.rows)
    assert 0 < result.request_mb < 5
    assert "first token, local server answering at once" in published(remote, out, result)


def test_popcount_benchmark_checks_and_times_every_kernel(tmp_path):
    from benchmarks import popcount

    out = tmp_path / "popcount.md"
    arguments = ["--pages", "40", "--tokens", "16", "--rounds", "1", "--out", str(out)]
    result = popcount.main(arguments)  # every kernel agreed with hamming_maxsim, or it raised
    assert len(result.rates) == 6 and popcount.REFERENCE in result.rates
    assert all(best >= median > 0 for median, best in result.rates.values())
    text = published(popcount, out, result)
    assert text.count("| numba") == 4


# -- indexing and full-size models --------------------------------------------------------------


@scale
@pytest.mark.parametrize(
    ("workers", "mode", "inline"),
    [
        (2, "2 page workers", False),  # rendered ahead, on the page workers
        (1, "1 page worker, inline", True),  # on the encoder's thread (a CPU encoder)
    ],
)
def test_indexing_benchmark_compares_naive_and_pipeline_on_the_tiny_model(
    tiny_models, tmp_path, workers, mode, inline
):
    from benchmarks import indexing

    out = tmp_path / "indexing.md"
    arguments = ["--pages", "6", "--models", "tiny", "--dpi", "48", "--out", str(out)]
    arguments += ["--page-workers", str(workers)]
    arguments += ["--memory", "2,7"] * (workers == 2)
    result = indexing.main([*arguments, "--models-dir", str(tiny_models.root)])
    naive, pipeline, fed = result.runs
    assert [run.model for run in result.runs] == ["tiny"] * 3
    assert naive.mode.startswith("naive") and pipeline.mode.endswith(mode)
    assert set(naive.stages) == {"render", "preprocess", "encode", "write"}  # each timed alone
    assert pipeline.pages == naive.pages == 6 and pipeline.pages_per_s > 0
    # the pipeline times the encoder and the writes; rendering and preparing run ahead of the
    # encoder (on the page workers) or between its batches (inline): neither is timed apart
    assert set(pipeline.stages) == {"encode", "write"} and pipeline.inline is inline
    assert pipeline.overhead > -1 and not pipeline.skipped
    assert fed.skipped and "encoder skipped" in fed.mode and fed.pages_per_s > 0
    assert pipeline.workers == fed.workers == workers
    text = published(indexing, out, result)
    assert text.count("| tiny |") == 3 and ("| inline | inline |" in text) is inline
    if workers != 2:
        assert result.memory == []
        return
    memory = result.memory
    assert [run["pages"] for run in memory] == [2, 7]  # one fresh process per PDF length
    assert all(run["peak_mb"] >= run["loaded_mb"] > 0 for run in memory)  # peak >= loaded
    assert "## Peak memory by PDF length" in text


@scale
def test_full_size_benchmark_runs_both_real_architectures(tiny_models, tmp_path):
    """The --full-size path with full widths but one layer each (full depth is for a GPU)."""
    from benchmarks import indexing
    from rag.models.batching import CPU_BATCH

    out = tmp_path / "full.md"
    arguments = ["--full-size", "--layers", "1", "--pages", "2", "--batch-sizes", "1,2"]
    arguments += ["--repeats", "1", "--dpi", "36", "--out", str(out)]
    result = indexing.main(arguments)
    models = ("colqwen2", "colpali")
    # --batch-sizes and the auto batch size (CPU_BATCH on a CPU), per model
    batches = sorted({1, 2, CPU_BATCH})
    assert [(m.model, m.batch) for m in result.measures] == [
        (model, batch) for model in models for batch in batches
    ]
    for m in result.measures:
        assert m.pages_per_s > 0 and m.flops_per_page > 0
        # MFU: model FLOP/s (pages/s x FLOP per page) over the device's peak, when known
        if m.peak is None:  # a GPU whose peak benchmarks.full_size does not know
            assert m.mfu is None
            continue
        assert m.mfu == pytest.approx(m.pages_per_s * m.flops_per_page / m.peak) and m.mfu > 0
    if result.device == "cpu":
        assert result.autos == [(model, CPU_BATCH) for model in models]
    attention = result.attention
    assert [(a[0], a[2]) for a in attention] == [
        (model, kernel) for model in models for kernel in ("sdpa", "eager")
    ]
    assert all(rate > 0 for _, _, _, rate, _ in attention)
    assert [a[4] for a in attention[::2]] == pytest.approx([1.0, 1.0], abs=1e-4)  # itself
    assert all(cosine > 0.99 for *_, cosine in attention)  # eager computes what sdpa does
    assert [run.model for run in result.runs] == ["colqwen2"] * 3 + ["colpali"] * 3
    assert [run.mode.split(",")[0] for run in result.runs] == ["naive", "pipeline", "pipeline"] * 2
    assert [run.skipped for run in result.runs] == [False, False, True] * 2
    assert all(run.pages_per_s > 0 for run in result.runs)
    assert all(run.stages["encode"] > 0 for run in result.runs if not run.skipped)
    text = out.read_text()
    assert text == indexing.full_size_report(result)
    assert "--full-size --pages 2 --batch-sizes 1,2 --layers 1 --repeats 1`" in text
    assert "Auto batch size" in text and "- peak for MFU: colqwen2 " in text


def test_a_batch_that_does_not_fit_the_gpu_is_reported_not_fatal(monkeypatch):
    from benchmarks import full_size as fs

    def measure(retriever, images, batch, repeats):
        if batch > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return 10.0 * batch, 1e12

    monkeypatch.setattr(fs, "measure", measure)
    family = SimpleNamespace(name="colqwen2")
    retriever = SimpleNamespace(family=family, device=torch.device("cpu"))
    measures = fs.sweep(retriever, [], [1, 8, 64], repeats=1, peak=989e12)
    assert [m.batch for m in measures] == [1, 8, 64]
    assert math.isnan(measures[-1].pages_per_s)  # recorded, not raised
    assert fs.fastest(measures).batch == 8
    assert measures[1].mfu == pytest.approx(80 * 1e12 / 989e12)  # 80 pages/s x 1 TFLOP
    rows = fs.report_rows(measures)
    assert rows[-1] == "| colqwen2 | 64 | out of memory | - | - | - |"
    assert rows[-2].endswith("| 8% |")
    with pytest.raises(SystemExit, match="no batch size fits"):
        fs.fastest(measures[2:])


@scale
def test_full_size_families_encode_one_page_each_in_its_own_process(tmp_path):
    from benchmarks import full_size as fs

    out = tmp_path / "families.md"
    result = fs.main(["--families", "colqwen3,colmodernvbert", "--layers", "1", "--out", str(out)])
    rows = {row["family"]: row for row in result.rows}
    assert set(rows) == {"colqwen3", "colmodernvbert"}
    assert (rows["colqwen3"]["dim"], rows["colmodernvbert"]["dim"]) == (320, 128)  # widths
    for row in rows.values():
        assert row["vectors"] > 0 and row["seconds"] > 0 and row["flops"] > 0
        assert row["parameters"] > 0 and row["peak_gb"] > 0
    assert result.command.endswith("--layers 1")
    text = out.read_text()
    assert text == fs.families_report(result)
    assert "--layers 1" in text and text.count(" GB |") == 2


def test_colqwen3_5_and_colgemma3_are_built_at_their_published_shapes():
    """ColQwen3.5 at Qwen3.5-4B's shape and ColGemma3 at gemma-3-4b-it's, built on the meta
    device (no weights): layer patterns, rotary sections, widths, vectors and parameter counts."""
    from devtools.tiny_models.gemma3 import colgemma3_at_scale
    from devtools.tiny_models.qwen3 import colqwen3_5_at_scale

    with torch.device("meta"):
        qwen, _ = colqwen3_5_at_scale()
        gemma, processor = colgemma3_at_scale()
    text = qwen.config.text_config
    assert text.layer_types == (["linear_attention"] * 3 + ["full_attention"]) * 8
    assert (text.hidden_size, text.head_dim, text.linear_num_value_heads) == (2560, 256, 32)
    rope = text.rope_parameters  # a quarter of each head rotated, in three M-RoPE sections
    assert 2 * sum(rope["mrope_section"]) == text.head_dim * rope["partial_rotary_factor"]
    assert (qwen.config.vision_config.depth, qwen.custom_text_proj.out_features) == (24, 320)
    text = gemma.config.text_config
    sliding = ["sliding_attention"]
    assert text.layer_types == (sliding * 5 + ["full_attention"]) * 5 + sliding * 4
    assert (text.hidden_size, text.head_dim, text.sliding_window) == (2560, 256, 1024)
    assert gemma.custom_text_proj.out_features == 128
    assert gemma.config.vision_config.image_size == 896
    assert processor.image_seq_length == gemma.config.mm_tokens_per_image == 256
    counts = [sum(p.numel() for p in model.parameters()) / 1e9 for model in (qwen, gemma)]
    assert [round(count, 2) for count in counts] == [3.91, 3.63]  # the test kit's vocabulary


def test_smolvlm_and_colsmol_are_built_at_their_published_shapes():
    """SmolVLM-256M / -500M and colSmol-256M at their published sizes (meta device: no
    weights): widths, layers, tiles of 64 tokens, parameter counts."""
    from devtools.tiny_models.idefics import colidefics3_at_scale, smolvlm_at_scale

    with torch.device("meta"):
        small, processor = smolvlm_at_scale("256m")
        larger, _ = smolvlm_at_scale("500m")
        retriever, _ = colidefics3_at_scale()
    text, vision = small.config.text_config, small.config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_key_value_heads) == (576, 30, 3)
    assert (vision.hidden_size, vision.image_size, vision.patch_size) == (768, 512, 16)
    assert processor.image_seq_len == (512 // 16 // small.config.scale_factor) ** 2 == 64
    assert larger.config.text_config.hidden_size == 960
    assert retriever.linear.out_features == 128
    counts = [sum(p.numel() for p in m.parameters()) / 1e6 for m in (small, larger, retriever)]
    assert [round(count) for count in counts] == [256, 507, 228]  # 256M, 500M; colSmol: no head


# -- dtype and latency --------------------------------------------------------------------------


@scale
def test_dtype_benchmark_times_both_dtypes_on_both_models(tiny_models, tmp_path):
    from benchmarks import dtype

    out = tmp_path / "dtype.md"
    arguments = ["--pages", "1", "--new-tokens", "3", "--repeats", "1", "--out", str(out)]
    result = dtype.main([*arguments, "--models-dir", str(tiny_models.root)])
    encoder, answerer = result.encoder, result.answerer
    assert [row[0] for row in encoder] == [row[0] for row in answerer] == ["float32", "bfloat16"]
    assert encoder[0][2] == pytest.approx(1.0, abs=1e-5)  # fp32 is the reference
    assert 0.99 < encoder[1][2] <= 1.0 + 1e-5
    assert all(value > 0 for row in encoder + answerer for value in row[1:])
    assert result.auto in dtype.DTYPES
    text = published(dtype, out, result)
    assert text.count("| float32 |") == text.count("| bfloat16 |") == 2
    with pytest.raises(SystemExit):  # decoding is timed between tokens: two at least
        dtype.parse_args(["--new-tokens", "1"])


STAGES = (
    "render_s", "prepare_s", "encode_s", "index_s", "query_s", "search_s", "image_encode_s",
    "prefill_s", "first_token_s", "follow_up_s", "follow_up_uncached_s", "tokens_per_s",
    "peak_gb", "peak_flops", "bandwidth",
)  # fmt: skip


@scale
def test_latency_benchmark_times_both_profiles_and_the_levers(tmp_path):
    """Both profiles end to end (one layer each, for speed), each in its own process: every
    stage has a figure, and the levers (the cpu profile's) their measurements."""
    from benchmarks import latency, latency_report

    out = tmp_path / "latency.md"
    arguments = ["--layers", "1", "--pages", "2", "--tokens", "3", "--levers"]
    result = latency.main([*arguments, "--out", str(out)])
    assert [row["profile"] for row in result.profiles] == ["cpu", "gpu"]
    for row in result.profiles:
        assert all(row[stage] > 0 for stage in STAGES), row
        assert row["pages"] == 2 and row["answer_pages"] > 0
    cpu, gpu = result.profiles
    assert "levers" not in gpu  # the levers, once (the cpu profile's)
    levers = cpu["levers"]
    budgets = [row["budget"] for row in levers["retriever_budgets"]]
    assert budgets == list(latency.RETRIEVER_BUDGETS)
    assert len(levers["answer_budgets"]) == len(latency.ANSWER_BUDGETS)
    assert [row["model"] for row in levers["retrievers"]] == [
        latency.PUBLISHED[name] for name in latency.CPU_RETRIEVERS
    ]
    assert levers["int8"]["profile"] == "int8" and levers["int8"]["encode_int8_s"] > 0
    assert [row["batch"] for row in levers["batches"]] == list(latency.BATCHES)
    preparation = levers["preparation"]
    assert preparation["ahead_s"] > 0 and preparation["inline_s"] > 0
    assert next(row["threads"] for row in levers["threads"]) == 1
    kernels = levers["kernels"]
    for label in latency.KERNEL_STEPS:
        assert kernels[f"encode_{label}_s"] > 0 and kernels[f"pages_{label}_s"] > 0
    # the row-major layout moves no value
    assert kernels["vector_cosine_mean_row_major"] == pytest.approx(1.0, abs=5e-6)
    assert kernels["vector_cosine_min_row_major"] == pytest.approx(1.0, abs=5e-6)
    text = out.read_text()
    assert text == latency_report.report(result)
    assert "## Profile `cpu`" in text and "## Profile `gpu`" in text
    for stage in ("index, whole pipeline", "**first token after Ask", "follow-up over the same"):
        assert text.count(stage) == 2
    tables = ("RAG_MAX_VISUAL_TOKENS", "RAG_ANSWER_MAX_PIXELS", "int8 dynamic", "Threads")
    for table in (*tables, "RAG_ATTN_IMPLEMENTATION=cpu_bf16", "RAG_BATCH_SIZE"):
        assert text.count(table) == 1
    for preparation in ("| ahead, on a page-worker thread |", "| inline, on the encoder's"):
        assert text.count(preparation) == 1


@scale
def test_latency_benchmark_measures_the_attention_kernel_against_matmuls():
    from benchmarks import latency, latency_report

    result = latency.main(["--attention"])
    assert [(kernel, dtype) for kernel, dtype, _ in result.kernels] == [
        ("sdpa", "float32"),
        ("sdpa", "bfloat16"),
        ("cpu_bf16", "float32"),
    ]  # three kernels on a CPU
    assert all(rate > 0 for *_, rate in result.kernels) and result.matmul > 0
    line = latency_report.attention_line(result)
    assert "sdpa, float32" in line and "cpu_bf16, float32" in line and "large matmuls" in line


def test_latency_report_renders_every_lever_from_its_data():
    """The latency reporter alone, on made-up data: no profile run needed."""
    from benchmarks import latency, latency_report

    row = dict.fromkeys(STAGES, 0.5) | {"profile": "cpu", "pages": 2, "answer_pages": 1}
    row |= {"retriever": "r/r", "answerer": "a/a", "dtype": "bfloat16", "vectors": 100}
    row |= {"retriever_parameters": 2e8, "answerer_parameters": 3e8, "image_tokens": 64}
    row |= {"prompt_tokens": 90, "decode_bytes": 1e9}
    row |= dict.fromkeys(("encode_flops", "image_flops", "prefill_flops", "query_flops"), 1e10)
    row["peak_flops"], row["bandwidth"] = 1e11, 1e10
    kernels = {
        f"{kind}_{label}_s": 0.2 for kind in ("encode", "pages") for label in latency.KERNEL_STEPS
    }
    for label in ("row_major", "bf16"):
        kernels |= {f"vector_cosine_mean_{label}": 1.0, f"vector_cosine_min_{label}": 1.0}
        kernels |= {f"logit_cosine_{label}": 1.0, f"top1_agreement_{label}": 1.0}
    int8 = {f"{kind}_{label}_s": 0.3 for kind in ("encode", "first_token") for label in
            ("none", "int8")}  # fmt: skip
    int8 |= {"decode_none": 9.0, "decode_int8": 7.0, "profile": "int8"}
    int8 |= dict.fromkeys(("vector_cosine_mean", "vector_cosine_min", "logit_cosine"), 0.99)
    int8["top1_agreement"] = 0.9
    row["levers"] = {
        "retriever_budgets": [{"budget": 0, "vectors": 9, "encode_s": 0.2, "flops": 1e12}],
        "answer_budgets": [
            {"budget": 1024**2, "rest": 512**2, "image_tokens": 9, "encode_s": 1, "prefill_s": 1}
        ],
        "retrievers": [{"model": "m/m", "parameters": 2e8, "vectors": 9, "encode_s": 0.2}],
        "int8": int8,
        "kernels": kernels,
        "batches": [{"batch": 1, "page_s": 0.5}],
        "preparation": {"workers": 1, "inline_chosen": True, "ahead_s": 2.0, "inline_s": 1.0},
        "threads": [{"threads": 1, "encode_s": 0.4, "tokens_per_s": 5.0}],
        "compile": {"eager_s": 0.2, "error": "RuntimeError: no"},
    }
    text = latency_report.report(latency.Result("python -m benchmarks.latency", "m", [row]))
    assert "| **index, whole pipeline** (the faster of 2 runs) | **2.00 pages/s** |" in text
    assert "| 1024 x 1024, the others 512 x 512 | 9 |" in text
    assert "| inline, on the encoder's thread | 1.00 s | 1.00 |" in text
    assert "the app's choice here: inline" in text
    assert "torch.compile of the retriever failed: RuntimeError: no" in text
