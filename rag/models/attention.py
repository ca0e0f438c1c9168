"""Attention in bf16 on the CPU for the vision towers' long, unmasked sequences
(RAG_ATTN_IMPLEMENTATION=cpu_bf16; the ``cpu`` profile's on a CPU with bf16 instructions).

A page's SigLIP tiles are 1,024 patches that all attend to each other, and attention is about
half of a page's encoding on a 2-core CPU: PyTorch's CPU kernel (``scaled_dot_product_attention``)
runs those shapes at ~175 GFLOP/s in float32 and in bf16 alike, while plain bf16 matmuls run at
~900 there. Two bf16 matmuls per head with the softmax between them reach ~400 GFLOP/s, and a
page is encoded in about 0.6 s less (``python -m benchmarks.latency --attention``;
docs/performance.md, "Time to answer", gives the agreement with float32 attention).

It is registered with transformers' own ``AttentionInterface`` (and the sdpa mask format, so
masks are built exactly as for ``sdpa``) and takes the place of sdpa wherever transformers chose
sdpa for a loaded model (``replace_sdpa``), and serves only what it does faster: a call on the
CPU with no mask, not causal, no dropout, one key/value head per query head and at least
``MIN_TOKENS`` queries. Everything else (text attention with a mask or a causal prompt,
decoding, short sequences, grouped heads, another device) goes to transformers' ``sdpa``
unchanged.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

NAME = "cpu_bf16"
# Below ~256 queries, the per-head loop costs more than the faster matmuls give (measured on
# 12 heads of 64: at 128 tokens PyTorch's kernel is twice as fast, at 256 they are even).
MIN_TOKENS = 256
_UNSERVED = ("position_bias", "cache", "softcap", "s_aux", "sinks")  # sdpa's own handling


def register() -> None:
    """Make ``NAME`` an attention implementation transformers accepts (idempotent)."""
    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def replace_sdpa(model: torch.nn.Module) -> int:
    """Serve with ``NAME`` every part of a loaded ``model`` for which transformers chose sdpa;
    the parts it set to eager (Gemma 2's soft-capped text attention, which sdpa cannot do)
    stay eager. How many configs now name ``NAME``."""
    register()
    replaced = 0
    for config in _configs(model):
        if config._attn_implementation == "sdpa":
            config._attn_implementation = {"": NAME}  # this config only, not its sub-configs
        replaced += config._attn_implementation == NAME
    return replaced


def _configs(model: torch.nn.Module) -> list:
    """Every config object ``model``'s modules read, with their sub-configs, once each."""
    found: dict[int, object] = {}
    pending = [getattr(module, "config", None) for module in model.modules()]
    while pending:
        config = pending.pop()
        if config is None or not hasattr(config, "sub_configs") or id(config) in found:
            continue
        found[id(config)] = config
        pending += [getattr(config, key, None) for key in config.sub_configs]
    return list(found.values())


def attention(  # noqa: PLR0917 (transformers' attention signature)
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: ``query`` (batch, heads, tokens, width), the output
    (batch, tokens, heads, width)."""
    options = {**kwargs, "dropout": dropout, "is_causal": is_causal}
    if served(module, (query, key, value), attention_mask, options):
        return bf16_attention(query, key, value, scaling), None
    return sdpa_attention_forward(
        module,
        query,
        key,
        value,
        attention_mask,
        dropout=dropout,
        scaling=scaling,
        is_causal=is_causal,
        **kwargs,
    )


def served(module, qkv, attention_mask, options) -> bool:
    """Whether the bf16 path computes what ``sdpa`` would, faster: ``options`` are the call's
    keywords (``is_causal``: as the caller passed it, else the module's own)."""
    query, key, value = qkv
    causal = options.get("is_causal")
    causal = causal if causal is not None else getattr(module, "is_causal", True)
    return (
        query.device.type == "cpu"
        and query.dtype in (torch.float32, torch.bfloat16)
        and attention_mask is None
        and not causal
        and not options.get("dropout")
        and query.shape[2] >= MIN_TOKENS
        and query.shape[1] == key.shape[1]  # no grouped key/value heads
        and query.shape[-1] == value.shape[-1]
        and all(options.get(name) is None for name in _UNSERVED)
    )


def bf16_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float | None = None
) -> torch.Tensor:
    """softmax(q kᵀ · scaling) v for each sequence and head, in bf16 matmuls (float32 sums
    inside them; the softmax computes in float32), returned in ``query``'s dtype as
    (batch, tokens, heads, width). One 2-D matmul per head: PyTorch's batched bf16 matmul is
    several times slower on the CPU."""
    batch, heads, tokens, width = query.shape
    scaling = width**-0.5 if scaling is None else scaling
    queries = (query * scaling).to(torch.bfloat16)
    keys, values = key.to(torch.bfloat16), value.to(torch.bfloat16)
    out = query.new_empty(batch, tokens, heads, width)
    # one set of buffers for every head (7% faster than fresh ones)
    scores = queries.new_empty(tokens, key.shape[2])
    weights, mixed = torch.empty_like(scores), queries.new_empty(tokens, width)
    for b in range(batch):
        for h in range(heads):
            torch.mm(queries[b, h], keys[b, h].T, out=scores)
            torch.softmax(scores, dim=-1, out=weights)
            out[b, :, h] = torch.mm(weights, values[b, h], out=mixed)
    return out
