"""The search benchmark runs end to end at a tiny size and reports every mode."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from benchmarks import search


def table_rows(text: str, table: int = 0) -> dict[str, list[str]]:
    """The rows of the ``table``-th table of a report, by their first cell."""
    tables: list[dict[str, list[str]]] = []
    inside = False
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and not inside:
            tables.append({})
        inside = line.startswith("|")
        if line.startswith("| ") and cells[0] != "mode":
            tables[-1][cells[0]] = cells
    return tables[table]


def test_benchmark_reports_every_mode(tmp_path):
    out = tmp_path / "r.md"
    text = search.main(["--pages", "200", "--queries", "2", "--out", str(out)])
    assert out.read_text() == text
    assert "machine:" in text
    assert "--pages 200" in text
    rows = table_rows(text)
    expected = set(search.MODES) | ({search.CUDA_MODE} if torch.cuda.is_available() else set())
    assert set(rows) == expected
    for mode, cells in rows.items():
        assert float(cells[1].replace(",", "")) > 0  # pages/s
        if mode in ("bf16-matmul-only", "bf16-compute-bound", "bf16-read-bound"):
            assert cells[5] == cells[6] == "-"  # a bound: it ranks nothing
        else:
            assert 0.0 <= float(cells[5]) <= 1.0
    assert float(rows["exact-fp32"][5]) == 1.0
    scoped = table_rows(text, table=1)  # the same queries within 1% of the documents
    assert set(scoped) == {"exact-bf16", "binary-prefilter+rerank"}
    for cells in scoped.values():
        assert float(cells[1]) > 0 and float(cells[2]) > 0
        assert float(cells[4]) == 1.0 and cells[5] == "none"  # exact in scope, nothing outside
    # the compute bound is the measured peak over a query's FLOPs: 2 x 20 tokens x 1030 x 128
    bound = rows["bf16-compute-bound"]
    gflops = float(bound[7].split("(")[1].split(" GFLOP/s")[0])
    assert float(bound[1].replace(",", "")) == pytest.approx(
        gflops * 1e9 / (2 * 20 * 1030 * search.DIM), rel=0.01
    )


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


def test_scale_benchmark_builds_reopens_and_queries_a_binary_index(tmp_path):
    from benchmarks import scale

    out = tmp_path / "scale.md"
    folder = tmp_path / "index"
    arguments = ["--pages", "45", "--pages-per-doc", "10", "--queries", "3", "--rerank", "50"]
    text = scale.main([*arguments, "--dir", str(folder), "--out", str(out)])
    assert out.read_text() == text
    assert "45 synthetic colqwen pages" in text  # counted by the reopened index
    cells = [row.strip("| ").split(" | ") for row in text.splitlines() if " | " in row]
    figures = dict(row for row in cells if len(row) == 2)
    modes = {row[0]: row for row in cells if len(row) == 8 and row[0] != "mode"}
    assert set(modes) == {"auto", "binary", "exact"}  # the same index in each search mode
    assert modes["auto"][1] == "exact"  # 45 pages: under auto's switch to binary
    for row in modes.values():  # top-10 overlap over every page and within the scope
        assert float(row[4]) == float(row[7]) == 1.0 and float(row[5]) > 0
    assert float(figures["top-10 overlap with exact fp32"]) == 1.0  # the rerank covers all
    assert figures["query, median (first pass: page cache as built)"].endswith(" ms")
    stage = next(name for name in figures if name.startswith("binary stage alone"))
    assert "too few pages for the 64-bit pass" in stage  # 45 pages
    assert figures[stage].endswith(" ms")
    assert figures["for comparison: 128-bit scan of every page, median"].endswith(" ms")
    assert not folder.exists()  # removed unless --keep


@pytest.mark.parametrize(
    ("workers", "mode", "stages"),
    [
        (2, "2 page workers", "overlapped"),  # rendered ahead, on the page workers
        (1, "1 page worker, inline", "inline"),  # on the encoder's thread (a CPU encoder)
    ],
)
def test_indexing_benchmark_compares_naive_and_pipeline_on_the_tiny_model(
    tiny_models, tmp_path, workers, mode, stages
):
    from benchmarks import indexing

    out = tmp_path / "indexing.md"
    arguments = ["--pages", "6", "--models", "tiny", "--dpi", "48", "--out", str(out)]
    arguments += ["--page-workers", str(workers)]
    arguments += ["--memory", "2,7"] * (workers == 2)
    text = indexing.main([*arguments, "--models-dir", str(tiny_models.root)])
    assert out.read_text() == text
    rows = [line for line in text.splitlines() if line.startswith("| tiny |")]
    assert len(rows) == 3
    naive, pipeline, fed = (row.strip("| ").split(" | ") for row in rows)
    assert naive[1].startswith("naive") and pipeline[1].endswith(mode)
    assert float(naive[3]) == 1.0 and float(pipeline[2]) > 0
    assert pipeline[4] == pipeline[5] == stages
    assert pipeline[-1].endswith("%")
    assert "encoder skipped" in fed[1] and fed[6] == "skipped" and fed[-1] == "-"
    assert float(fed[2]) > 0
    if workers != 2:
        return
    memory = [
        line.strip("| ").split(" | ") for line in text.split("## Peak memory")[1].splitlines()
    ]
    memory = [row for row in memory if row[0].isdigit()]
    assert [row[0] for row in memory] == ["2", "7"]  # one fresh process per PDF length
    assert all(float(row[3]) >= float(row[2]) > 0 for row in memory)  # peak >= after loading
    assert float(memory[0][4]) == 1.0


def test_full_size_benchmark_runs_both_real_architectures(tiny_models, tmp_path):
    """The --full-size path with full widths but one layer each (full depth is for a GPU)."""
    from benchmarks import indexing
    from rag.models.batching import CPU_BATCH

    out = tmp_path / "full.md"
    arguments = ["--full-size", "--layers", "1", "--pages", "2", "--batch-sizes", "1,2"]
    arguments += ["--repeats", "1", "--dpi", "36", "--out", str(out)]
    text = indexing.main(arguments)
    assert out.read_text() == text
    assert "--full-size --pages 2 --batch-sizes 1,2 --layers 1 --repeats 1`" in text
    rows = [line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("| col")]
    encoder = [row for row in rows if len(row) == 6 and row[5].endswith(("%", "n/a"))][:6]
    # --batch-sizes and the auto batch size (CPU_BATCH on a CPU), per model
    batches = [str(size) for size in sorted({1, 2, CPU_BATCH})]
    encoder = encoder[: 2 * len(batches)]
    assert [(row[0], row[1]) for row in encoder] == [
        (model, batch) for model in ("colqwen2", "colpali") for batch in batches
    ]
    peaks = dict(
        item.rsplit(" ", 2)[:2]
        for item in text.split("- peak for MFU: ")[1].split("\n")[0].split(", ")
    )
    for row in encoder:
        assert float(row[2]) > 0 and float(row[3]) > 0  # pages/s, GFLOP per page
        # MFU: model FLOP/s (pages/s x FLOP per page) over the peak the report names
        if row[5] == "n/a":  # a GPU whose peak benchmarks.full_size does not know
            assert peaks[row[0]] == "unknown"
            continue
        flops = float(row[2]) * float(row[3]) / 1e3  # TFLOP/s
        assert flops / float(peaks[row[0]]) == pytest.approx(
            float(row[5].rstrip("%")) / 100, abs=0.01
        )
    assert "Auto batch size" in text
    assert f"colqwen2 {CPU_BATCH}, colpali {CPU_BATCH}" in text
    attention = [row for row in rows if len(row) == 5]
    assert [(row[0], row[2]) for row in attention] == [
        (model, kernel) for model in ("colqwen2", "colpali") for kernel in ("sdpa", "eager")
    ]
    assert all(float(row[3]) > 0 for row in attention)
    assert [float(row[4]) for row in attention[::2]] == [1.0, 1.0]  # each against itself
    assert all(float(row[4]) > 0.99 for row in attention)  # eager computes what sdpa does
    rows = [row for row in rows if row not in attention]
    pipeline = [row for row in rows if row not in encoder]
    assert [row[0] for row in pipeline] == ["colqwen2"] * 3 + ["colpali"] * 3
    modes = [row[1].split(",")[0] for row in pipeline]
    assert modes == ["naive", "pipeline", "pipeline"] * 2
    assert [row[-1].endswith("%") for row in pipeline] == [True, True, False] * 2
    assert all(float(row[2]) > 0 for row in pipeline)
    assert [row[3] for row in pipeline[::3]] == ["1.00", "1.00"]  # x naive
    assert [row[4] == "skipped" for row in pipeline] == [False, False, True] * 2


def test_a_batch_that_does_not_fit_the_gpu_is_reported_not_fatal(monkeypatch):
    from types import SimpleNamespace

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
    assert fs.fastest(measures).batch == 8
    rows = fs.report_rows(measures)
    assert rows[-1] == "| colqwen2 | 64 | out of memory | - | - | - |"
    assert rows[-2].endswith("| 8% |")  # 80 pages/s x 1 TFLOP over 989 TFLOP/s
    with pytest.raises(SystemExit, match="no batch size fits"):
        fs.fastest(measures[2:])


def test_dtype_benchmark_times_both_dtypes_on_both_models(tiny_models, tmp_path):
    from benchmarks import dtype

    out = tmp_path / "dtype.md"
    arguments = ["--pages", "1", "--new-tokens", "3", "--repeats", "1", "--out", str(out)]
    text = dtype.main([*arguments, "--models-dir", str(tiny_models.root)])
    assert out.read_text() == text
    rows = [line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    encoder = [row for row in rows if len(row) == 4 and row[0] != "dtype"]
    answerer = [row for row in rows if len(row) == 5 and row[0] != "dtype"]
    assert [row[0] for row in encoder] == [row[0] for row in answerer] == ["float32", "bfloat16"]
    assert encoder[0][2] == answerer[0][2] == answerer[0][4] == "1.00"  # fp32 is the reference
    assert float(encoder[0][3]) == 1.0 and 0.99 < float(encoder[1][3]) <= 1.0
    assert all(float(value) > 0 for row in encoder + answerer for value in row[1:])
    with pytest.raises(SystemExit):  # decoding is timed between tokens: two at least
        dtype.parse_args(["--new-tokens", "1"])


def test_sweep_benchmark_reports_every_rerank_and_prefilter_pair(tmp_path):
    from benchmarks import sweep

    out = tmp_path / "sweep.md"
    arguments = ["--pages", "120", "--queries", "2", "--reranks", "5,120", "--prefilters", "0,3"]
    text = sweep.main([*arguments, "--out", str(out)])
    assert out.read_text() == text
    cells = [line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("|")]
    rows = [row for row in cells if row[0].isdigit()]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("5", "0", "off"),
        ("5", "3", "keeps 15"),  # 15 <= 120 / 4
        ("120", "0", "off"),
        ("120", "3", "off"),  # would keep 360: more than there are
    ]
    assert all(0.0 <= float(row[3]) <= 1.0 and float(row[4]) >= 0 for row in rows)
    assert float(rows[2][3]) == 1.0  # every page reranked exactly: the top 10 are found


def test_full_size_families_encode_one_page_each_in_its_own_process(tmp_path):
    from benchmarks import full_size as fs

    out = tmp_path / "families.md"
    text = fs.main(["--families", "colqwen3,colmodernvbert", "--layers", "1", "--out", str(out)])
    assert out.read_text() == text and "--layers 1" in text
    rows = {
        cells[0]: cells
        for cells in (line.strip("| ").split(" | ") for line in text.splitlines())
        if len(cells) == 9 and cells[0] in ("colqwen3", "colmodernvbert")
    }
    assert set(rows) == {"colqwen3", "colmodernvbert"}
    assert (rows["colqwen3"][4], rows["colmodernvbert"][4]) == ("320", "128")  # vector widths
    for cells in rows.values():
        assert int(cells[3]) > 0 and float(cells[5]) > 0 and float(cells[6]) > 0
        assert cells[8].endswith(" GB")


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


def test_latency_benchmark_times_both_profiles_and_the_levers(tmp_path):
    """Both profiles end to end (one layer each, for speed), each in its own process: every
    stage has a figure, and the levers their tables."""
    from benchmarks import latency

    out = tmp_path / "latency.md"
    arguments = ["--layers", "1", "--pages", "2", "--tokens", "3", "--levers"]
    text = latency.main([*arguments, "--out", str(out)])
    assert out.read_text() == text
    assert "## Profile `cpu`" in text and "## Profile `gpu`" in text
    for stage in ("index, whole pipeline", "**first token after Ask", "follow-up over the same"):
        assert text.count(stage) == 2
    assert text.count("tokens/s |") >= 2 and text.count("peak memory") == 2
    # the levers, once (the cpu profile's)
    tables = ("RAG_MAX_VISUAL_TOKENS", "RAG_ANSWER_MAX_PIXELS", "int8 dynamic", "Threads")
    for table in (*tables, "RAG_ATTN_IMPLEMENTATION=cpu_bf16", "RAG_BATCH_SIZE"):
        assert text.count(table) == 1
    for preparation in ("| ahead, on a page-worker thread |", "| inline, on the encoder's"):
        assert text.count(preparation) == 1
    row_major = next(line for line in text.splitlines() if line.startswith("| row-major"))
    assert "mean 1.00000, min 1.00000" in row_major  # the layout moves no value


def test_latency_benchmark_measures_the_attention_kernel_against_matmuls():
    from benchmarks import latency

    line = latency.main(["--attention"])
    rates = [float(word) for word in line.replace(":", " ").split() if word.isdigit()]
    assert "sdpa, float32" in line and "cpu_bf16, float32" in line
    assert len(rates) == 4 and min(rates) > 0  # three kernels, and matmuls
