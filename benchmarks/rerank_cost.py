"""What the reranking stage (RAG_RERANKER, ``rag.models.rerankers``) costs a question, with both
rerankers at their published sizes (random weights cost the same compute as trained ones).

    python -m benchmarks.latency --rerankers [--depth 20] [--device cpu] [--layers N] [--out FILE]

Through the app's own ``TextReranker`` and ``VisualReranker``:

- ``text:BAAI/bge-reranker-v2-m3`` (XLM-RoBERTa large, 568M): ``depth`` (question, page words)
  pairs, scored as the app scores them (batches of 8), at 512 tokens a pair (a dense page's
  words, cut there) and at 128 (a slide's);
- ``visual:lightonai/MonoQwen2-VL-v0.1`` (Qwen2-VL-2B, its LoRA merged: the base's compute): one
  forward pass a page, a rendered sample page at two pixel budgets. Pages are scored one by one,
  so a question's cost is ``depth`` times a page's: a few pages are measured, not ``depth``.

Each figure is set against the rate of large matmuls measured in the same run (FLOPs counted as
in ``benchmarks.latency``: 2 x parameters x tokens, and attention's own).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

TEXT_LENGTHS = (512, 128)  # tokens a (question, page words) pair
# The answerer's budgets: the gpu profile's best page (1280 Qwen tokens), and 512 x 512. On a CPU
# the larger is only counted (its bound): a page there takes minutes.
VISUAL_BUDGETS = (1280 * 28 * 28, 512 * 512)
CPU_MEASURED_BUDGETS = (512 * 512,)
PAGES_MEASURED = 2  # visual pages timed at each budget (the median of them)
TEXT_MODEL, VISUAL_MODEL = "BAAI/bge-reranker-v2-m3", "lightonai/MonoQwen2-VL-v0.1"
RESULTS = "results-latency-rerankers.md"


@dataclass
class RerankCost:
    device: str
    dtype: str
    depth: int
    matmul: float  # large matmuls' FLOP/s in the compute dtype, this run
    text_parameters: int = 0
    visual_parameters: int = 0
    text: list[dict] = field(default_factory=list)  # per length: tokens, question_s, flops
    visual: list[dict] = field(default_factory=list)  # per budget: tokens, page_s, flops


def run(device: str = "cpu", depth: int = 20, layers: int | None = None) -> RerankCost:
    """Both rerankers' cost of a question reranking ``depth`` pages (``layers`` overrides every
    layer count, for a quick check)."""
    from benchmarks.full_size import compute_dtype
    from benchmarks.latency import matmul_peak

    dtype = compute_dtype(device)
    name = str(dtype).removeprefix("torch.")
    result = RerankCost(device, name, depth, matmul_peak(device, dtype))
    text_costs(result, device, dtype, layers)
    visual_costs(result, device, dtype, layers)
    return result


def text_costs(result: RerankCost, device: str, dtype, layers: int | None) -> None:
    from benchmarks.full_size import _default
    from benchmarks.latency import timed
    from devtools.tiny_models.common import seed
    from devtools.tiny_models.rerankers import xlm_roberta_reranker_at_scale
    from rag.models.rerankers import TextReranker

    seed(1)
    with _default(device, dtype):
        model, tokenizer = xlm_roberta_reranker_at_scale(layers)
    reranker = TextReranker(model, tokenizer, TEXT_MODEL)
    result.text_parameters = sum(p.numel() for p in model.parameters())
    question = "What was the total revenue in 2024, and how did it change?"
    for length in TEXT_LENGTHS:
        pages = [words_of(tokenizer, question, length)] * result.depth
        reranker.score(question, pages[:2])  # warm-up
        seconds, _ = timed(reranker.score, question, pages)
        tokens = len(tokenizer(question, pages[0])["input_ids"])
        assert tokens == length, tokens
        flops = result.depth * pair_flops(model, tokens)
        result.text.append({"tokens": tokens, "question_s": seconds, "flops": flops})
    del reranker, model


def words_of(tokenizer, question: str, length: int) -> str:
    """Page words that make the (question, words) pair ``length`` tokens: "revenue" is one."""
    question_tokens = len(tokenizer(question)["input_ids"])  # <s> question </s>
    return " ".join(["revenue"] * (length - question_tokens - 2))  # </s> words </s>


def pair_flops(model, tokens: int) -> float:
    """A pair through the cross-encoder: 2 x parameters (not the embedding tables) x tokens, and
    attention's own over all of them."""
    config = model.config
    body = sum(p.numel() for n, p in model.named_parameters() if "embeddings." not in n)
    attention = 4 * tokens**2 * config.hidden_size * config.num_hidden_layers
    return 2 * body * tokens + attention


def visual_costs(result: RerankCost, device: str, dtype, layers: int | None) -> None:
    from benchmarks.full_size import _default
    from benchmarks.latency import timed
    from devtools.tiny_models.common import seed
    from devtools.tiny_models.qwen import FULL_TEXT_LAYERS, FULL_VISION_DEPTH, qwen2_vl_at_scale
    from rag.models.rerankers import VisualReranker

    page = sample_page()
    seed(1)
    with _default(device, dtype):
        model, processor = qwen2_vl_at_scale(
            layers or FULL_TEXT_LAYERS,
            layers or FULL_VISION_DEPTH,
            visual_tokens=max(VISUAL_BUDGETS) // 28**2,
            vocab_size=151936,  # Qwen2-VL's: the head runs on the last position only
        )
    result.visual_parameters = sum(p.numel() for p in model.parameters())
    question = "What was the total revenue in 2024, and how did it change?"
    for budget in VISUAL_BUDGETS:
        reranker = VisualReranker(model, processor, VISUAL_MODEL, budget)
        inputs = reranker.inputs(question, page)
        times = [math.nan]
        if device != "cpu" or budget in CPU_MEASURED_BUDGETS:
            reranker.score_page(question, page)  # warm-up
            times = [timed(reranker.score_page, question, page)[0] for _ in range(PAGES_MEASURED)]
        result.visual.append(
            {
                "budget": budget,
                "image_tokens": int((inputs["input_ids"] == model.config.image_token_id).sum()),
                "tokens": int(inputs["input_ids"].shape[1]),
                "page_s": statistics.median(times),
                "flops": page_flops(model, inputs),
            }
        )
    del model


def page_flops(model, inputs) -> float:
    """One page's forward pass: the vision tower over its patches, the text model over the
    prompt (causal), the head on the last position."""
    from benchmarks.latency import (
        head_parameters,
        parameter_counts,
        text_attention_flops,
        vision_attention_flops,
        vision_patches,
    )

    counts = parameter_counts(model)
    head, tied = head_parameters(model)
    body = counts["text"] - (0 if tied else head)
    tokens = int(inputs["input_ids"].shape[1])
    vision = 2 * counts["vision"] * vision_patches(model, inputs)
    vision += vision_attention_flops(model, inputs)
    text = 2 * (body * tokens + head) + text_attention_flops(model, tokens, causal=True)
    return vision + text


def sample_page():
    """The annual report's first page, rendered as the app renders pages (144 DPI)."""
    import tempfile

    from benchmarks.indexing import SAMPLES
    from rag.config import Settings
    from rag.ingest.pdf import inspect_pdf, render_pages

    pdf, settings = SAMPLES / "annual_report.pdf", Settings()
    with tempfile.TemporaryDirectory() as scratch:
        first = next(iter(render_pages(pdf, Path(scratch), settings, inspect_pdf(pdf, settings))))
        return first.open().convert("RGB")


def report(result: RerankCost, command: str, machine: str) -> str:
    from benchmarks.latency_report import seconds, share
    from benchmarks.report import header, table

    depth, peak = result.depth, result.matmul
    text_rows = [
        (
            f"{TEXT_MODEL}: {depth} pages' words, {row['tokens']} tokens a pair",
            seconds(row["question_s"]),
            seconds(row["flops"] / peak),
            share(row["flops"] / peak, row["question_s"]),
            f"{row['flops'] / 1e12:.2f}",
        )
        for row in result.text
    ]
    visual_rows = [
        (
            f"{VISUAL_MODEL}: {depth} pages at {pixels(row['budget'])} "
            f"({row['image_tokens']} image tokens a page)",
            "not measured" if math.isnan(row["page_s"]) else seconds(depth * row["page_s"]),
            seconds(depth * row["flops"] / peak),
            "" if math.isnan(row["page_s"]) else share(row["flops"] / peak, row["page_s"]),
            f"{depth * row['flops'] / 1e12:.2f}",
        )
        for row in result.visual
    ]
    lines = [
        *header(
            "What reranking costs a question (random weights at published sizes)",
            f"command: `{command}`",
            f"machine: {machine}",
            f"device: {result.device}, {result.dtype}; matmul rate {result.matmul / 1e9:.0f} "
            "GFLOP/s in this run",
            f"models: {TEXT_MODEL} ({result.text_parameters / 1e6:.0f}M), {VISUAL_MODEL} "
            f"(Qwen2-VL-2B with its LoRA merged, {result.visual_parameters / 1e6:.0f}M)",
            f"the visual reranker scores pages one by one: its rows are {PAGES_MEASURED} pages "
            f"measured (the median) times {depth}",
        ),
        "",
        *table(
            [*text_rows, *visual_rows],
            ("reranking the first stage's best pages", "measured", "bound", "share", "TFLOP"),
            "lrrrr",
        ),
    ]
    return "\n".join(lines) + "\n"


def pixels(budget: int) -> str:
    side = round(budget**0.5)
    return f"{side} x {side} px" if side * side == budget else f"{budget / 1e6:.2f} MP"
