"""The latency benchmark's report (``benchmarks.latency``): its measured data as Markdown.

``report`` sets each profile's stages against the bounds measured in the same run (a share:
bound / measured) and writes the levers' tables; ``attention_line`` is ``--attention``'s one
line. Nothing here measures.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from benchmarks.report import header, table

if TYPE_CHECKING:
    from benchmarks.latency import Attention, Result


def share(bound_s: float, measured_s: float) -> str:
    return "-" if not measured_s or math.isnan(bound_s) else f"{bound_s / measured_s:.0%}"


def seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 0.1 else f"{value:.2f} s"


def profile_rows(row: dict) -> list[tuple[str, str, str, str]]:
    """(stage, measured, bound, share) for each stage of one profile."""
    peak, bandwidth = row["peak_flops"], row["bandwidth"]
    page_bound = row["encode_flops"] / peak
    ttft_bound = (row["image_flops"] + row["prefill_flops"] + row["query_flops"]) / peak
    decode_bound = bandwidth / row["decode_bytes"]

    def bounded(stage: str, measured: str, flops: float) -> tuple[str, str, str, str]:
        bound = row[flops] / peak
        return stage, seconds(row[measured]), seconds(bound), share(bound, row[measured])

    rows = [
        ("index: render, per page", seconds(row["render_s"]), "", ""),
        ("index: prepare, per page", seconds(row["prepare_s"]), "", ""),
        bounded(
            f"index: encode, per page ({row['vectors']:.0f} vectors)", "encode_s", "encode_flops"
        ),
        (
            "**index, whole pipeline** (the faster of 2 runs)",
            f"**{1 / row['index_s']:.2f} pages/s**",
            f"{1 / page_bound:.2f} pages/s",
            share(page_bound, row["index_s"]),
        ),
        bounded("query embedding", "query_s", "query_flops"),
        ("search", seconds(row["search_s"]), "", ""),
        bounded(
            f"answerer: {row['answer_pages']} pages' encoding ({row['image_tokens']} image tokens)",
            "image_encode_s",
            "image_flops",
        ),
        bounded(f"answerer: prefill ({row['prompt_tokens']} tokens)", "prefill_s", "prefill_flops"),
        (
            "**first token after Ask, cold pages**",
            f"**{seconds(row['first_token_s'])}**",
            seconds(ttft_bound),
            share(ttft_bound, row["first_token_s"]),
        ),
        (
            "**first token, follow-up over the same pages**",
            f"**{seconds(row['follow_up_s'])}**",
            "",
            "",
        ),
        (
            "first token, follow-up, without the page cache",
            seconds(row["follow_up_uncached_s"]),
            "",
            "",
        ),
        (
            "**decoding**",
            f"**{row['tokens_per_s']:.1f} tokens/s**",
            f"{decode_bound:.1f} tokens/s",
            f"{row['tokens_per_s'] / decode_bound:.0%}",
        ),
        ("**peak memory**", f"**{row['peak_gb']:.1f} GB**", "", ""),
    ]
    if "gpu_peak_gb" in row:
        rows.append(("peak GPU memory", f"{row['gpu_peak_gb']:.1f} GB", "", ""))
    return rows


def levers_rows(levers: dict) -> list[str]:
    """Each lever's table, against the code without it, as measured in the same process."""
    budgets = [
        (
            row["budget"] or "the checkpoint's (4 x 4 tiles)",
            row["vectors"],
            seconds(row["encode_s"]),
            f"{row['flops'] / 1e12:.2f}",
        )
        for row in levers["retriever_budgets"]
    ]
    answer_budgets = [
        (_pixels(row["budget"], row["rest"]), row["image_tokens"], seconds(row["encode_s"]),
         seconds(row["prefill_s"]))
        for row in levers["answer_budgets"]
    ]  # fmt: skip
    retrievers = [
        (row["model"], f"{row['parameters'] / 1e6:.0f}M", row["vectors"], seconds(row["encode_s"]))
        for row in levers["retrievers"]
    ]
    threads = [
        (row["threads"], seconds(row["encode_s"]), f"{row['tokens_per_s']:.1f} tokens/s")
        for row in levers["threads"]
    ]
    lines = [
        "",
        "Retriever page budget (RAG_MAX_VISUAL_TOKENS), one A4 page:",
        "",
        *table(budgets, ("budget", "vectors", "encode", "TFLOP"), "lrrr"),
        "",
        "Answerer page budget (RAG_ANSWER_MAX_PIXELS for the best page; "
        "RAG_ANSWER_REST_MAX_PIXELS for the others), the answer's pages, cold:",
        "",
        *table(answer_budgets, ("budget", "image tokens", "pages' encoding", "prefill"), "lrrr"),
        "",
        "Small retrievers at the profile's page budget, one A4 page:",
        "",
        *table(retrievers, ("retriever", "parameters", "vectors", "encode"), "lrrr"),
        *int8_rows(levers["int8"]),
        *kernel_rows(levers.get("kernels")),
        *batch_rows(levers.get("batches")),
        *preparation_rows(levers.get("preparation")),
        "",
        "Threads (torch.set_num_threads):",
        "",
        *table(threads, ("threads", "retriever, one page", "decoding"), "rrr"),
    ]
    c = levers.get("compile")
    if c and "error" in c:
        lines += ["", f"torch.compile of the retriever failed: {c['error']}"]
    elif c:
        lines += [
            "",
            f"torch.compile of the retriever: eager {seconds(c['eager_s'])} a page; compiled, "
            f"the first page {seconds(c['first_s'])} (compiling), then {seconds(c['steady_s'])}.",
        ]
    return lines


def _pixels(budget: int, rest: int) -> str:
    """``2048 x 2048``, or ``1024 x 1024, the others 512 x 512``."""
    side = math.isqrt(budget)
    label = f"{side} x {side}"
    if rest:
        label += f", the others {math.isqrt(rest)} x {math.isqrt(rest)}"
    return label


def int8_rows(q: dict) -> list[str]:
    dtype = "the compute dtype"
    marks = {"none": "", "int8": ""}
    marks[q["profile"]] = " (the profile's)"
    rows = [
        (
            "retriever, one page",
            seconds(q["encode_none_s"]),
            seconds(q["encode_int8_s"]),
            f"page vectors' cosine: mean {q['vector_cosine_mean']:.4f}, "
            f"min {q['vector_cosine_min']:.4f}",
        ),
        (
            "first token after Ask, cold pages",
            seconds(q["first_token_none_s"]),
            seconds(q["first_token_int8_s"]),
            "",
        ),
        (
            "answerer decoding",
            f"{q['decode_none']:.1f} tokens/s",
            f"{q['decode_int8']:.1f} tokens/s",
            f"next-token logits' cosine {q['logit_cosine']:.4f}, same top token at "
            f"{q['top1_agreement']:.0%} of the prompt's positions",
        ),
    ]
    columns = ("", f"{dtype}{marks['none']}", f"int8{marks['int8']}", "agreement")
    return [
        "",
        f"int8 dynamic quantisation of the linear layers (RAG_QUANTIZE=int8), against {dtype}:",
        "",
        *table(rows, columns, "lrrl"),
    ]


def batch_rows(rows: list[dict] | None) -> list[str]:
    if not rows:
        return []
    cells = [(row["batch"], seconds(row["page_s"])) for row in rows]
    return [
        "",
        "Pages per retriever forward pass (RAG_BATCH_SIZE; auto on a CPU: 1):",
        "",
        *table(cells, ("pages a pass", "a page"), "rr"),
    ]


def preparation_rows(p: dict | None) -> list[str]:
    if not p:
        return []
    chosen = "inline" if p["inline_chosen"] else "ahead"
    cells = [
        ("ahead, on a page-worker thread", seconds(p["ahead_s"]), f"{1 / p['ahead_s']:.2f}"),
        ("inline, on the encoder's thread", seconds(p["inline_s"]), f"{1 / p['inline_s']:.2f}"),
    ]
    return [
        "",
        f"Pages rendered and prepared ahead of the encoder or on its thread, through "
        f"Pipeline.add_file ({p['workers']} page worker{'s' * (p['workers'] != 1)}; the app's "
        f"choice here: {chosen}; alternating runs, the faster of 2 each):",
        "",
        *table(cells, ("pages prepared", "a page", "pages/s"), "lrr"),
    ]


KERNEL_NAMES = {
    "before": "before (PyTorch's sdpa)",
    "row_major": "row-major embeddings",
    "bf16": "and bf16 attention (the profile's)",
}


def kernel_rows(k: dict | None) -> list[str]:
    if not k:
        return []
    cells = []
    for label, name in KERNEL_NAMES.items():
        agreement = (
            ("(the reference)", "")
            if label == "before"
            else (
                f"mean {k[f'vector_cosine_mean_{label}']:.5f}, "
                f"min {k[f'vector_cosine_min_{label}']:.5f}",
                f"cosine {k[f'logit_cosine_{label}']:.5f}, same top token at "
                f"{k[f'top1_agreement_{label}']:.0%} of the positions",
            )
        )
        cells.append(
            (name, seconds(k[f"encode_{label}_s"]), seconds(k[f"pages_{label}_s"]), *agreement)
        )
    columns = (
        "", "retriever, one page", "answerer, the answer's pages", "page vectors' cosine",
        "next-token logits",
    )  # fmt: skip
    return [
        "",
        "Row-major patch embeddings (rag.models.row_major), then the vision towers' attention "
        "in bf16 matmuls (RAG_ATTN_IMPLEMENTATION=cpu_bf16, rag.models.attention), against the "
        "code before them; agreement with the code before:",
        "",
        *table(cells, columns, "lrrll"),
    ]


def report(result: Result) -> str:
    """Each profile's stages against their bounds, and (``--levers``) each lever's tables."""
    lines = header(
        "Time to answer, end to end (random weights at published sizes)",
        f"command: `{result.command}`",
        f"machine: {result.machine}",
        "bound: what the stage would take at the machine's best rate measured in this run "
        "(large matmuls for FLOP-bound stages, FLOPs counted as 2 x parameters x tokens plus "
        "attention's own; memory bandwidth for decoding, every weight read once per token); "
        "share: bound / measured",
    )
    for row in result.profiles:
        lines += [
            "",
            f"## Profile `{row['profile']}`: {row['retriever']} "
            f"({row['retriever_parameters'] / 1e6:.0f}M) + {row['answerer']} "
            f"({row['answerer_parameters'] / 1e6:.0f}M), {row['dtype']}",
            "",
            f"Matmul rate {row['peak_flops'] / 1e9:.0f} GFLOP/s, memory bandwidth "
            f"{row['bandwidth'] / 1e9:.1f} GB/s; a {row['pages']}-page PDF, "
            f"{row['answer_pages']}-page answers.",
            "",
            *table(profile_rows(row), ("stage", "measured", "bound", "share"), "lrrr"),
        ]
        if "levers" in row:
            lines += levers_rows(row["levers"])
    return "\n".join(lines) + "\n"


def attention_line(result: Attention) -> str:
    """The attention kernels' rates on a page's SigLIP tiles, and large matmuls'."""
    rates = "; ".join(
        f"{kernel}, {dtype}: {flops / 1e9:.0f} GFLOP/s" for kernel, dtype, flops in result.kernels
    )
    return (
        f"attention on a page's SigLIP tiles: {rates}; large matmuls ({result.dtype}): "
        f"{result.matmul / 1e9:.0f} GFLOP/s"
    )
