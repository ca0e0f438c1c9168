"""Time to answer, end to end, with models at the sizes of published checkpoints (random weights).

    python -m benchmarks.latency [--profiles cpu,gpu] [--pages 10] [--top-k 3] [--tokens 32]
                                 [--levers] [--device cpu] [--layers N] [--out FILE]
    python -m benchmarks.latency --attention
    python -m benchmarks.latency --rerankers [--depth 20]

Each profile (``rag.profiles``) runs in a fresh process, on ``--device``, with its retriever and
answerer built at their published sizes (``devtools.tiny_models``: random weights cost the same
compute as trained ones) in the app's compute dtype, and with the profile's page budgets. Through
the app's own ``Pipeline`` and ``Answerer`` it:

- indexes a ``--pages``-page PDF (the sample PDFs' pages): poppler's render, the processor's
  preparation and the encoder, each timed alone, then ``Pipeline.add_file`` as the app runs it;
- asks a question: the query's embedding, the search, then the answer over the ``--top-k``
  pages: their encoding by the answerer's vision tower, the prefill, the time from Ask to the
  first token, and the decoding rate over ``--tokens`` tokens;
- asks a follow-up over the same pages: the rewrite (20 tokens, the length of a standalone
  question: random weights never stop early), the query, the search, and the answer, whose pages
  come from the page cache;
- reports the process's peak memory.

Each figure is set against what the machine allows, measured in the same run: matmul-bound
stages against the rate of large bf16 matmuls (FLOPs counted as 2 x parameters x tokens),
decoding against the memory bandwidth (every weight read once per token). ``--levers`` (CPU)
measures what each lever gives against the code without it, in the same run: page budgets,
the page cache, int8 dynamic quantisation, the attention kernel, batch sizes, preparing pages
ahead of the encoder or on its thread, torch.compile and thread counts. On a GPU,
``--device cuda`` records the same table; the README's GPU plan gives what to expect.

``run`` measures (a ``Result``: one dict per profile, from its process) and
``benchmarks.latency_report`` writes it as Markdown; ``--attention`` measures only the attention
kernels' rates against large matmuls (an ``Attention``); ``--rerankers`` only what the reranking
stage adds to a question (``benchmarks.rerank_cost``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks import cpu_matmul_peak, offline
from benchmarks.full_size import image_patches
from benchmarks.latency_report import attention_line, report
from benchmarks.report import machine, parser, publish
from rag.models.answerer import budgeted
from rag.models.checkpoints import quantized

QUESTION = "What was the total revenue in 2024, and how did it change?"
FOLLOW_UP = "And what drove that change?"
REWRITE_TOKENS = 20  # a standalone question's length
PROFILE_MODELS = {  # (retriever builder, answerer builder) of each profile's checkpoints
    "cpu": ("colmodernvbert", "smolvlm-256m"),
    "gpu": ("colqwen2", "qwen2-vl-2b"),
}
PUBLISHED = {
    "colmodernvbert": "ModernVBERT/colmodernvbert",
    "colidefics3": "vidore/colSmol-256M",
    "colqwen2": "vidore/colqwen2-v1.0",
    "smolvlm-256m": "HuggingFaceTB/SmolVLM-256M-Instruct",
    "smolvlm-500m": "HuggingFaceTB/SmolVLM-500M-Instruct",
    "qwen2-vl-2b": "Qwen/Qwen2-VL-2B-Instruct",
}
BANDWIDTH_BYTES = 512 * 2**20
RESULTS = "results-latency.md"


@dataclass
class Result:
    command: str
    machine: str
    profiles: list[dict]  # one per profile (``profile_run``), with its ``levers`` if measured


@dataclass
class Attention:
    device: str
    dtype: str  # the compute dtype of the matmuls
    kernels: list[tuple[str, str, float]]  # (kernel, dtype, FLOP/s)
    matmul: float  # large matmuls' FLOP/s in the compute dtype


# -- models -----------------------------------------------------------------------------------


def build_retriever(name: str, settings, layers: int | None):
    from benchmarks.full_size import build
    from rag.models.batching import auto_batch_size, probe_page
    from rag.models.families import named
    from rag.models.retriever import Retriever

    device = settings.device
    model, processor = build(name, device, layers)
    family = named(name)
    if settings.max_visual_tokens:
        family.limit_pages(processor, settings.max_visual_tokens)
    model = attending(quantized(model, settings.quantize), settings)
    retriever = Retriever(model, processor, family, PUBLISHED[name])
    # pages per forward pass as the app sizes them (RAG_BATCH_SIZE, or auto for the device)
    probe = probe_page(settings.dpi, settings.max_page_pixels)
    retriever.batch_size = settings.batch_size or auto_batch_size(retriever, probe)
    return retriever


def build_answerer(name: str, settings, layers: int | None):
    from benchmarks.full_size import _default, compute_dtype
    from devtools.tiny_models.common import seed
    from rag.models.answerer import Answerer
    from rag.models.families import named

    seed(1)
    with _default(settings.device, compute_dtype(settings.device)):
        if name.startswith("smolvlm"):
            from devtools.tiny_models.idefics import smolvlm_at_scale

            model, processor = smolvlm_at_scale(name.split("-")[1], layers)
            family = named("idefics3")
        else:
            from devtools.tiny_models.qwen import (
                FULL_TEXT_LAYERS,
                FULL_VISION_DEPTH,
                qwen2_vl_at_scale,
            )

            model, processor = qwen2_vl_at_scale(
                layers or FULL_TEXT_LAYERS,
                layers or FULL_VISION_DEPTH,
                visual_tokens=settings.answer_max_pixels // 28**2,
                vocab_size=151936,  # Qwen2-VL's: its head is read for every token decoded
            )
            family = named("qwen_vl")
    model = attending(quantized(model, settings.quantize), settings)
    return Answerer(model, processor, family, settings)


def attending(model, settings):
    """``model`` with the profile's attention (RAG_ATTN_IMPLEMENTATION), as ``from_pretrained``
    would have set it."""
    from rag.models.checkpoints import attention_options, with_attention

    options = attention_options(settings.attn_implementation, settings.device)
    if options:
        model.set_attn_implementation(options["attn_implementation"])
    return with_attention(model, settings.attn_implementation)


# -- the machine's bounds ---------------------------------------------------------------------


def matmul_peak(device: str, dtype: torch.dtype) -> float:
    from benchmarks.full_size import peak_flops

    return cpu_matmul_peak(dtype) if device == "cpu" else (peak_flops(device) or math.nan)


def attention_rate(device: str, dtype: torch.dtype, kernel: str = "sdpa", tiles: int = 5) -> float:
    """FLOP/s of an attention kernel on a page's SigLIP tiles: ``tiles`` x 12 heads of 1,024
    patches, 64 wide, laid out as transformers hands them over; the best of five after a
    warm-up. ``kernel``: PyTorch's ``scaled_dot_product_attention``, or ``cpu_bf16``
    (``rag.models.attention``, RAG_ATTN_IMPLEMENTATION=cpu_bf16)."""
    from rag.models.attention import bf16_attention

    shape = (tiles, 1024, 12, 64)
    q, k, v = (torch.randn(shape, dtype=dtype, device=device).transpose(1, 2) for _ in range(3))
    attend = (
        bf16_attention if kernel == "cpu_bf16" else torch.nn.functional.scaled_dot_product_attention
    )
    with torch.inference_mode():
        attend(q, k, v)
        best = math.inf
        for _ in range(5):
            sync(device)
            started = time.perf_counter()
            attend(q, k, v)
            sync(device)
            best = min(best, time.perf_counter() - started)
    return 4 * tiles * 12 * 1024**2 * 64 / best


# PyTorch's kernel in float32 (the int8 models' activations) and bf16; the app's bf16 kernel.
ATTENTION_KERNELS = (
    ("sdpa", torch.float32),
    ("sdpa", torch.bfloat16),
    ("cpu_bf16", torch.float32),
)


def memory_bandwidth(device: str) -> float:
    """Bytes/s of a large copy (read + write), the best of five."""
    source = torch.empty(BANDWIDTH_BYTES, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    best = math.inf
    for _ in range(6):
        sync(device)
        started = time.perf_counter()
        target.copy_(source)
        sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * BANDWIDTH_BYTES / best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# -- FLOPs and bytes --------------------------------------------------------------------------

VISION = ("visual", "vision_model", "vision_tower")


def weights(model):
    """(name, count, bytes each) of every weight: the parameters, and the int8 weights of
    quantised linear layers (packed, not parameters)."""
    for name, parameter in model.named_parameters():
        yield name, parameter.numel(), parameter.element_size()
    for name, module in model.named_modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            yield f"{name}.weight", module.weight().numel(), 1


def part(name: str) -> str:
    if any(word in name for word in VISION):
        return "vision"
    return "embedding" if "embed_tokens" in name else "text"


def parameter_counts(model) -> dict[str, int]:
    """Parameters by part: vision tower, the rest (text model, projections, head), embeddings."""
    counts = {"vision": 0, "text": 0, "embedding": 0}
    for name, count, _ in weights(model):
        counts[part(name)] += count
    return counts


def decode_bytes(model) -> int:
    """Bytes read for each token decoded: every weight of the text model and its head (a tied
    head reads the whole embedding table), in the precision it is stored in."""
    total = sum(count * size for name, count, size in weights(model) if part(name) == "text")
    _, tied = head_parameters(model)
    if tied:
        table = model.get_input_embeddings().weight
        total += table.numel() * table.element_size()
    return total


def vision_patches(model, inputs) -> int:
    """Patches the vision tower sees for ``inputs`` (every tile, or Qwen's 14-px patches)."""
    return sum(image_patches(model, inputs))


def vision_attention_flops(model, inputs) -> float:
    """Attention's own FLOPs in the vision tower: 4 x patches² x width x layers for each image
    (or tile), whose patches all attend to each other."""
    config = model.config.vision_config
    width = getattr(config, "embed_dim", None) or config.hidden_size
    layers = getattr(config, "depth", None) or config.num_hidden_layers
    return sum(4 * n * n * width * layers for n in image_patches(model, inputs))


def text_attention_flops(model, tokens: int, causal: bool) -> float:
    """Attention's own FLOPs over ``tokens`` in the text model (half of them when causal)."""
    config = model.config.text_config
    return (2 if causal else 4) * tokens**2 * config.hidden_size * config.num_hidden_layers


def head_parameters(model) -> tuple[int, bool]:
    """(the output head's parameters, whether it is the embedding table, tied)."""
    head = model.get_output_embeddings().weight
    head = head() if callable(head) else head  # an int8 layer's weight is a method
    return head.numel(), head is model.get_input_embeddings().weight


# -- one profile ------------------------------------------------------------------------------


class FirstTokens:
    """A generate() streamer that records when each new token arrives."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt = True

    def put(self, value) -> None:
        if self._prompt:  # the first call carries the prompt
            self._prompt = False
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def generate_timed(generator, inputs, tokens: int, started: float) -> dict:
    recorder = FirstTokens()
    with torch.inference_mode():
        generator.model.generate(
            **inputs,
            streamer=recorder,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
        )
    first, last = recorder.times[0], recorder.times[-1]
    rate = (len(recorder.times) - 1) / (last - first) if len(recorder.times) > 1 else math.nan
    return {"first_token_s": first - started, "tokens_per_s": rate}


def timed(function, *args, repeats: int = 1, **kwargs) -> tuple[float, object]:
    """(median seconds, last result) of ``repeats`` calls."""
    seconds, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def index_stages(pipeline, pdf: Path) -> dict:
    """Render, prepare and encode the PDF's pages, each stage alone (one page at a time)."""
    from rag.ingest.pdf import inspect_pdf, render_pages

    settings, retriever = pipeline.settings, pipeline.retriever
    scratch = Path(tempfile.mkdtemp(dir=settings.data_dir))
    info = inspect_pdf(pdf, settings)
    render_s, pages = timed(lambda: list(render_pages(pdf, scratch, settings, info)))
    images = [page.open() for page in pages]
    prepare_s, inputs = timed(lambda: [retriever.preprocess([image]) for image in images])
    retriever.encode(inputs[0])  # warm-up
    encode_s, _ = timed(lambda: [retriever.encode(one) for one in inputs])
    n = len(images)
    return {
        "pages": n,
        "render_s": render_s / n,
        "prepare_s": prepare_s / n,
        "encode_s": encode_s / n,
        "vectors": statistics.mean(int(one["attention_mask"].sum()) for one in inputs),
        "encode_flops": statistics.mean(page_flops(retriever.model, one) for one in inputs),
    }


def page_flops(model, inputs) -> float:
    """A page's FLOPs in the retriever: 2 x parameters x tokens, and attention's own."""
    counts = parameter_counts(model)
    tokens = int(inputs["attention_mask"].sum())
    linear = 2 * (counts["vision"] * vision_patches(model, inputs) + counts["text"] * tokens)
    attention = vision_attention_flops(model, inputs) + text_attention_flops(model, tokens, False)
    return linear + attention


def index_whole(pipeline, pdf: Path, runs: int = 2) -> float:
    """Seconds a page of ``Pipeline.add_file`` as the app runs it: the fastest of ``runs``
    (the machine is shared, and a neighbour's burst only ever slows a run down), the
    document deleted between runs and kept after the last."""
    best = math.inf
    for run in range(runs):
        seconds, result = timed(pipeline.add_file, pdf)
        best = min(best, seconds / result.pages)
        if run < runs - 1:
            pipeline.delete(result.doc_id)
    return best


def distinct_pdf(path: Path, n_pages: int) -> Path:
    """``n_pages`` pages cycled from the sample PDFs, each repeat trimmed by 6 points a time
    round, so that no two pages render to the same image (the page cache would take a repeated
    page for one it has seen: the answer's pages must be cold)."""
    from pypdf import PdfReader, PdfWriter

    from benchmarks.indexing import SAMPLES

    sources = [page for pdf in sorted(SAMPLES.glob("*.pdf")) for page in PdfReader(pdf).pages]
    writer = PdfWriter()
    for number in range(n_pages):
        page = writer.add_page(sources[number % len(sources)])
        trim = 6 * (number // len(sources))
        page.mediabox.upper_right = (page.mediabox.right - trim, page.mediabox.top)
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def precision(quantize: str, dtype: torch.dtype) -> str:
    name = str(dtype).removeprefix("torch.")
    return "int8 linear layers (float32 elsewhere)" if quantize == "int8" else name


def profile_run(args) -> dict:
    from benchmarks.full_size import compute_dtype
    from rag.chat import Turn
    from rag.config import Settings
    from rag.pipeline import Models, Pipeline

    data = Path(tempfile.mkdtemp(prefix="latency-"))
    settings = Settings.from_env(
        {}, profile=args.one, device=args.device, data_dir=data, top_k=args.top_k
    )
    retriever_name, answerer_name = PROFILE_MODELS[args.one]
    retriever = build_retriever(retriever_name, settings, args.layers)
    generator = build_answerer(answerer_name, settings, args.layers)
    models = Models(settings)
    models._retriever, models._answerer = retriever, generator
    pipeline = Pipeline(settings, models=models)
    dtype = compute_dtype(args.device)
    row = {
        "profile": args.one,
        "retriever": PUBLISHED[retriever_name],
        "answerer": PUBLISHED[answerer_name],
        "dtype": precision(settings.quantize, dtype),
        "retriever_parameters": sum(count for _, count, _ in weights(retriever.model)),
        "answerer_parameters": sum(count for _, count, _ in weights(generator.model)),
        "peak_flops": matmul_peak(args.device, dtype),
        "bandwidth": memory_bandwidth(args.device),
    }
    pdf = distinct_pdf(data / "report.pdf", args.pages)
    row |= index_stages(pipeline, pdf)
    row["index_s"] = index_whole(pipeline, pdf)

    row |= answer_run(pipeline, generator, args.tokens)
    history = [Turn(QUESTION, "Revenue was 63.8 million euros in 2024 [report.pdf p.2].")]
    row |= follow_up_run(pipeline, generator, history, args.tokens)
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # levers aside
    if torch.cuda.is_initialized():
        row["gpu_peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    if args.levers:
        row["levers"] = levers(pipeline, generator, args)
    return row


def answer_run(pipeline, generator, tokens: int) -> dict:
    """A first question over pages never seen: ask, encode the pages, prefill, decode."""
    retriever = pipeline.retriever
    query_s, query = timed(retriever.embed_query, QUESTION, repeats=3)
    k, settings = pipeline.settings.top_k, pipeline.settings
    search_s, hits = timed(
        pipeline.search_index.search,
        query,
        QUESTION,
        k,
        None,
        mode=settings.hybrid,
        weight=settings.hybrid_weight,
        repeats=5,
    )
    answer = pipeline.ask(QUESTION)
    pages = answer.pages()
    # The vision tower on the pages (warm-up first), then the prefill over encoded pages.
    generator.build_inputs(QUESTION, pages)
    generator.page_cache.clear()
    sized = budgeted(pages, generator.settings)  # each page at its own budget, as answers see it
    encode_s, _ = timed(lambda: [generator._encoded(page) for page in sized])
    inputs = generator.build_inputs(QUESTION, pages)
    with torch.inference_mode():
        prefill_s, _ = timed(lambda: generator.model(**inputs, logits_to_keep=1), repeats=2)
    plain = generator._family_inputs(QUESTION, sized, ())
    counts = parameter_counts(generator.model)
    head, tied = head_parameters(generator.model)
    body = counts["text"] - (0 if tied else head)  # the head runs on the last position only
    prompt = int(inputs["input_ids"].shape[1])
    cold = cold_first_token(pipeline, generator, tokens)

    return {
        "query_s": query_s,
        "search_s": search_s,
        "answer_pages": len(pages),
        "image_tokens": int((inputs["input_ids"] == generator.model.config.image_token_id).sum()),
        "prompt_tokens": prompt,
        "image_encode_s": encode_s,
        "image_flops": 2 * counts["vision"] * vision_patches(generator.model, plain)
        + vision_attention_flops(generator.model, plain),
        "prefill_s": prefill_s,
        "prefill_flops": 2 * (body * prompt + head)
        + text_attention_flops(generator.model, prompt, causal=True),
        "query_flops": 2 * parameter_counts(retriever.model)["text"] * len(query),
        "first_token_s": cold["first_token_s"],
        "tokens_per_s": cold["tokens_per_s"],
        "decode_bytes": decode_bytes(generator.model),
        "hits": [hit.citation for hit in hits],
    }


def cold_first_token(pipeline, generator, tokens: int) -> dict:
    """From Ask to the first token over pages the answerer has not encoded, then decoding."""
    generator.page_cache.clear()
    started = time.perf_counter()
    answer = pipeline.ask(QUESTION)
    inputs = generator.build_inputs(QUESTION, answer.pages())
    return generate_timed(generator, inputs, tokens, started)


def follow_up_run(pipeline, generator, history, tokens: int) -> dict:
    """A follow-up over the same pages: rewrite, query, search, then the answer from the page
    cache; and the same without the cache (the code before it)."""
    import rag.models.answerer

    first = pipeline.ask(QUESTION)
    pages = first.pages()
    generator.build_inputs(QUESTION, pages)  # the pages as the first answer left them cached
    out = {}
    for label, cache in (("follow_up_s", generator.page_cache), ("follow_up_uncached_s", None)):
        kept, generator.page_cache = generator.page_cache, cache
        original = rag.models.answerer.REWRITE_TOKENS
        rag.models.answerer.REWRITE_TOKENS = REWRITE_TOKENS
        try:
            started = time.perf_counter()
            pipeline.ask(FOLLOW_UP, history=history)
            inputs = generator.build_inputs(FOLLOW_UP, pages, history)
            out[label] = generate_timed(generator, inputs, 2, started)["first_token_s"]
        finally:
            generator.page_cache = kept
            rag.models.answerer.REWRITE_TOKENS = original
    rewrite_inputs = generator.family.text_inputs(generator.processor, FOLLOW_UP)
    out["rewrite_prompt_tokens"] = int(rewrite_inputs["input_ids"].shape[1])
    return out


# -- levers -----------------------------------------------------------------------------------

RETRIEVER_BUDGETS = (0, 640, 320, 64)  # vectors a page (0: the checkpoint's own)
# (pixels for the best page, for the others; 0: the same)
ANSWER_BUDGETS = ((2048**2, 0), (1024**2, 0), (1024**2, 512**2), (512**2, 0))


def levers(pipeline, generator, args) -> dict:
    """Each lever against the code without it, on the same pages in the same process."""
    retriever = pipeline.retriever
    pages = pipeline.ask(QUESTION).pages()
    page = pages[0].image
    out = {"retriever_budgets": [], "answer_budgets": []}
    image_processor = retriever.processor.image_processor
    own = image_processor.size
    for budget in RETRIEVER_BUDGETS:
        image_processor.size = type(own)(longest_edge=4 * 512)
        if budget:
            retriever.family.limit_pages(retriever.processor, budget)
        inputs = retriever.preprocess([page])
        seconds, _ = timed(retriever.encode, inputs, repeats=2)
        vectors = int(inputs["attention_mask"].sum())
        out["retriever_budgets"].append(
            {
                "budget": budget,
                "vectors": vectors,
                "encode_s": seconds,
                "flops": page_flops(retriever.model, inputs),
            }
        )
    image_processor.size = own
    for budget, rest in ANSWER_BUDGETS:
        settings = dataclasses.replace(
            generator.settings, answer_max_pixels=budget, answer_rest_max_pixels=rest
        )
        variant = type(generator)(generator.model, generator.processor, generator.family, settings)
        variant.build_inputs(QUESTION, pages[:1])  # warm-up
        variant.page_cache.clear()
        encode_s, inputs = timed(variant.build_inputs, QUESTION, pages)
        with torch.inference_mode():
            prefill_s, _ = timed(variant.model, **inputs, logits_to_keep=1)
        image_token = generator.model.config.image_token_id
        out["answer_budgets"].append(
            {
                "budget": budget,
                "rest": rest,
                "image_tokens": int((inputs["input_ids"] == image_token).sum()),
                "encode_s": encode_s,
                "prefill_s": prefill_s,
            }
        )
    out["retrievers"] = retriever_candidates(pipeline.settings, page, args.layers)
    names = PROFILE_MODELS[args.one]
    out["int8"] = int8_lever(pipeline, page, args.tokens, names, args.layers)
    if args.device == "cpu":
        out["kernels"] = kernel_lever(retriever, generator, page, pages)
        out["batches"] = batch_lever(retriever, [one.image for one in pages])
        out["preparation"] = preparation_lever(pipeline, args.pages)
    out["threads"] = thread_lever(retriever, generator, page, pages, args.tokens)
    if args.compile:
        out["compile"] = compile_lever(retriever, page)
    return out


CPU_RETRIEVERS = ("colmodernvbert", "colidefics3")  # the small retrievers a CPU can run


def retriever_candidates(settings, page, layers: int | None) -> list[dict]:
    """Each small retriever on one page, at the profile's page budget."""
    rows = []
    for name in CPU_RETRIEVERS:
        retriever = build_retriever(name, settings, layers)
        inputs = retriever.preprocess([page])
        retriever.encode(inputs)  # warm-up
        seconds, _ = timed(retriever.encode, inputs, repeats=2)
        rows.append(
            {
                "model": PUBLISHED[name],
                "parameters": sum(count for _, count, _ in weights(retriever.model)),
                "vectors": int(inputs["attention_mask"].sum()),
                "encode_s": seconds,
            }
        )
        del retriever
    return rows


def decode_rate(generator, inputs, tokens: int) -> float:
    return generate_timed(generator, inputs, tokens, time.perf_counter())["tokens_per_s"]


def int8_lever(pipeline, page, tokens: int, names: tuple[str, str], layers) -> dict:
    """int8 dynamic quantisation (RAG_QUANTIZE=int8, ``rag.models.checkpoints.quantized``)
    against the models in their compute dtype, the same pages each way: a page's encoding, the
    first token from Ask on cold pages, decoding; and how far the int8 models' page vectors and
    next-token logits are from the others'."""
    from rag.pipeline import Models, Pipeline

    own = pipeline.settings.quantize
    other = dataclasses.replace(pipeline.settings, quantize="none" if own == "int8" else "int8")
    models = Models(other)
    models._retriever = build_retriever(names[0], other, layers)
    models._answerer = build_answerer(names[1], other, layers)
    pipelines = {
        own: pipeline,
        other.quantize: Pipeline(other, index=pipeline.index, models=models),
    }
    inputs = pipeline.retriever.preprocess([page])
    pages = budgeted(pipeline.ask(QUESTION).pages(), pipeline.settings)  # the same for both
    out, vectors, logits = {}, {}, {}
    for label in ("none", "int8"):
        each = pipelines[label]
        encoder, generator = each.retriever, each.answerer
        encoder.encode(inputs)  # warm-up
        out[f"encode_{label}_s"], (vectors[label],) = timed(encoder.encode, inputs, repeats=2)
        cold = cold_first_token(each, generator, tokens)
        out[f"first_token_{label}_s"] = cold["first_token_s"]
        out[f"decode_{label}"] = cold["tokens_per_s"]
        with torch.inference_mode():
            plain = generator._family_inputs(QUESTION, pages, ())
            logits[label] = generator.model(**plain).logits[0].float()
    cosine = torch.nn.functional.cosine_similarity(vectors["int8"], vectors["none"], dim=-1)
    agreement = logits["int8"].argmax(-1) == logits["none"].argmax(-1)
    return out | {
        "profile": own,
        "vector_cosine_mean": cosine.mean().item(),
        "vector_cosine_min": cosine.min().item(),
        "logit_cosine": torch.nn.functional.cosine_similarity(
            logits["int8"], logits["none"], dim=-1
        )
        .mean()
        .item(),
        "top1_agreement": agreement.float().mean().item(),
    }


# (RAG_ATTN_IMPLEMENTATION, row-major patch embeddings): the code before, each step after.
KERNEL_STEPS = {"before": ("sdpa", False), "row_major": ("sdpa", True), "bf16": ("cpu_bf16", True)}


def kernel_lever(retriever, generator, page, pages) -> dict:
    """The row-major patch embeddings (``rag.models.row_major``) and then the bf16 attention
    (``rag.models.attention``) against the code before them, on the same models and pages: a page's
    encoding by the retriever, the answer's pages' encoding by the answerer, and how far the
    page vectors and next-token logits move (the layout moves nothing)."""
    inputs = retriever.preprocess([page])
    sized = budgeted(pages, generator.settings)
    plain = generator._family_inputs(QUESTION, sized, ())
    out, vectors, logits = {}, {}, {}
    for label, (implementation, row_major) in KERNEL_STEPS.items():
        with kernels((retriever.model, generator.model), implementation, row_major):
            retriever.encode(inputs)  # warm-up
            out[f"encode_{label}_s"], (vectors[label],) = timed(retriever.encode, inputs, repeats=2)
            generator.page_cache.clear()
            out[f"pages_{label}_s"], _ = timed(
                lambda: [generator._encoded(one) for one in sized], repeats=2
            )
            generator.page_cache.clear()
            with torch.inference_mode():
                logits[label] = generator.model(**plain).logits[0].float()
    for label in ("row_major", "bf16"):
        cosine = torch.nn.functional.cosine_similarity(vectors[label], vectors["before"], dim=-1)
        out[f"vector_cosine_min_{label}"] = cosine.min().item()
        out[f"vector_cosine_mean_{label}"] = cosine.mean().item()
        out[f"logit_cosine_{label}"] = (
            torch.nn.functional.cosine_similarity(logits[label], logits["before"], dim=-1)
            .mean()
            .item()
        )
        same = logits[label].argmax(-1) == logits["before"].argmax(-1)
        out[f"top1_agreement_{label}"] = same.float().mean().item()
    return out


@contextlib.contextmanager
def kernels(models, implementation: str, row_major: bool):
    """``models`` with this attention, and without the row-major hook unless ``row_major``."""
    own = [model.config._attn_implementation for model in models]
    removed = {}
    for model in models:
        attend(model, implementation)
        for module in model.modules():
            if not row_major and type(module).__name__.endswith("VisionEmbeddings"):
                removed[module] = dict(module._forward_hooks)
                module._forward_hooks.clear()
    try:
        yield
    finally:
        for module, hooks in removed.items():
            module._forward_hooks.update(hooks)
        for model, kept in zip(models, own, strict=True):
            attend(model, kept)


def attend(model, implementation: str) -> None:
    """sdpa for all of ``model``, then rag.models.attention's kernel in its place for
    ``cpu_bf16``."""
    from rag.models.attention import replace_sdpa

    model.set_attn_implementation("sdpa")
    if implementation == "cpu_bf16":
        replace_sdpa(model)


BATCHES = (1, 2, 4)  # pages per forward pass (RAG_BATCH_SIZE)


def batch_lever(retriever, images) -> list[dict]:
    """Seconds a page with ``BATCHES`` pages per forward pass, on the same pages (the answer's,
    repeated to the largest batch)."""
    images = [images[i % len(images)] for i in range(max(BATCHES))]
    rows = []
    for size in BATCHES:
        inputs = retriever.preprocess(images[:size])
        retriever.encode(inputs)  # warm-up
        seconds, _ = timed(retriever.encode, inputs, repeats=2)
        rows.append({"batch": size, "page_s": seconds / size})
    return rows


def preparation_lever(pipeline, n_pages: int, runs: int = 2) -> dict:
    """Seconds a page of ``Pipeline.add_file`` with pages prepared ahead of the encoder, on a
    page-worker thread, and on the encoder's own thread (``prepares_inline``: the app's choice
    with one page worker on a CPU). The runs alternate, so both see the same neighbours; the
    fastest of each is kept. The PDF has one page more than the profile's, so that it is not the
    indexed one; it is deleted after each run."""
    from unittest import mock

    from rag.config import page_workers
    from rag.models import encoding

    pdf = distinct_pdf(pipeline.settings.data_dir / "preparation.pdf", n_pages + 1)
    best = {"ahead": math.inf, "inline": math.inf}
    for run in range(runs):
        for mode in ("ahead", "inline") if run % 2 == 0 else ("inline", "ahead"):
            chosen = lambda *_, mode=mode: mode == "inline"  # noqa: E731
            with mock.patch.object(encoding, "prepares_inline", chosen):
                seconds, result = timed(pipeline.add_file, pdf)
            pipeline.delete(result.doc_id)
            best[mode] = min(best[mode], seconds / result.pages)
    workers = page_workers(pipeline.settings)
    return {
        "workers": workers,
        "inline_chosen": encoding.prepares_inline(workers, pipeline.retriever.device.type),
        "ahead_s": best["ahead"],
        "inline_s": best["inline"],
    }


def thread_lever(retriever, generator, page, pages, tokens: int) -> list[dict]:
    own = torch.get_num_threads()
    inputs = retriever.preprocess([page])
    answer_inputs = generator.build_inputs(QUESTION, pages)
    rows = []
    for threads in sorted({1, own}):
        torch.set_num_threads(threads)
        try:
            encode_s, _ = timed(retriever.encode, inputs, repeats=2)
            rate = decode_rate(generator, answer_inputs, tokens)
        finally:
            torch.set_num_threads(own)
        rows.append({"threads": threads, "encode_s": encode_s, "tokens_per_s": rate})
    return rows


def compile_lever(retriever, page) -> dict:
    """torch.compile of the retriever's forward: the first call (compiling) and the next."""
    import copy

    inputs = retriever.preprocess([page])
    eager_s, _ = timed(retriever.encode, inputs, repeats=2)
    compiled = copy.copy(retriever)
    compiled.model = torch.compile(retriever.model)
    try:
        first_s, _ = timed(compiled.encode, inputs)
        steady_s, _ = timed(compiled.encode, inputs, repeats=2)
    except Exception as error:  # a model torch.compile cannot trace (int8 layers, say)
        return {"eager_s": eager_s, "error": f"{type(error).__name__}: {str(error)[:120]}"}
    return {"eager_s": eager_s, "first_s": first_s, "steady_s": steady_s}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    arguments = parser("latency", __doc__, RESULTS)
    arguments.add_argument("--profiles", default="cpu,gpu")
    arguments.add_argument("--pages", type=int, default=10)
    arguments.add_argument("--top-k", type=int, default=3)
    arguments.add_argument("--tokens", type=int, default=32)
    arguments.add_argument("--device", default="cpu")
    arguments.add_argument("--levers", action="store_true", help="measure each lever (CPU)")
    arguments.add_argument("--compile", action="store_true", help="with --levers: torch.compile")
    arguments.add_argument("--layers", type=int, help="every layer count (a quick check)")
    arguments.add_argument(
        "--attention", action="store_true", help="only the attention kernel's rate, and matmul's"
    )
    arguments.add_argument(
        "--remote",
        action="store_true",
        help="also the first token with answers on a model server (benchmarks.remote's row)",
    )
    arguments.add_argument(
        "--rerankers", action="store_true", help="only the rerankers' cost (benchmarks.rerank_cost)"
    )
    arguments.add_argument(
        "--depth", type=int, default=20, help="with --rerankers: pages reranked (RAG_RERANK_DEPTH)"
    )
    arguments.add_argument("--one", help=argparse.SUPPRESS)  # the measuring process
    return arguments.parse_args(argv)


def main(argv: list[str] | None = None) -> Result | Attention | None:
    args = parse_args(argv)
    offline()
    if args.attention:
        rates = attention(args.device)
        print(attention_line(rates))
        return rates
    if args.one:
        print(json.dumps(profile_run(args)))
        return None
    flags = " ".join(argv if argv is not None else sys.argv[1:])
    if args.rerankers:
        from benchmarks import rerank_cost

        cost = rerank_cost.run(args.device, args.depth, args.layers)
        command = f"python -m benchmarks.latency {flags}".strip()
        publish(rerank_cost.report(cost, command, machine()), args.out, rerank_cost.RESULTS)
        return cost
    result = run(args, f"python -m benchmarks.latency {flags}".strip())
    text = report(result)
    if args.remote:  # the remote answerer: the app's side of its first token, in the same run
        from benchmarks import remote

        text += "\n" + remote.report(remote.run(remote.parse_args(["--top-k", str(args.top_k)])))
    publish(text, args.out, RESULTS)
    return result


def attention(device: str) -> Attention:
    """The attention kernels' rates on a page's SigLIP tiles (the app's bf16 kernel on a CPU
    only), and large matmuls' in the compute dtype."""
    from benchmarks.full_size import compute_dtype

    dtype = compute_dtype(device)
    kernels = [
        (kernel, str(kind).removeprefix("torch."), attention_rate(device, kind, kernel))
        for kernel, kind in ATTENTION_KERNELS
        if kernel == "sdpa" or device == "cpu"
    ]
    return Attention(device, str(dtype).removeprefix("torch."), kernels, matmul_peak(device, dtype))


def run(args: argparse.Namespace, command: str) -> Result:
    """Each profile in a fresh process (``--one``), its figures read back as JSON."""
    rows = []
    for profile in args.profiles.split(","):
        command_line = [sys.executable, "-m", "benchmarks.latency", "--one", profile]
        for flag in ("pages", "top_k", "tokens", "device", "layers"):
            value = getattr(args, flag)
            if value is not None:
                command_line.append(f"--{flag.replace('_', '-')}={value}")
        command_line += ["--levers"] * (args.levers and profile == "cpu")
        command_line += ["--compile"] * args.compile
        done = subprocess.run(command_line, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"profile {profile}: the measuring process failed")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return Result(command, machine(), rows)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
