"""Tiny rerankers (``rag.models.rerankers``): a text cross-encoder and a visual one.

``xlm_roberta_reranker`` is an ``XLMRobertaForSequenceClassification`` with one label, the
architecture of BAAI/bge-reranker-v2-m3, and a tiny SentencePiece-style (Unigram) tokenizer that
knows the question words whole. ``monoqwen2_vl`` is a PEFT LoRA adapter over the tiny Qwen2-VL
answerer, laid out as lightonai/MonoQwen2-VL-v0.1 is over Qwen/Qwen2-VL-2B-Instruct: the adapter
alone (no processor: the app takes its base's), ``base_model_name_or_path`` naming the base.
``xlm_roberta_reranker_at_scale`` builds the cross-encoder at bge-reranker-v2-m3's published size
for the latency benchmark.
"""

from __future__ import annotations

from pathlib import Path

import torch

from devtools.tiny_models.common import (
    QUESTION_WORDS,
    TALK_WORDS,
    TEXT,
    is_built,
    random_lora,
    save,
    seed,
)

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0-3, as XLM-RoBERTa's
CHARACTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:?!'\"()%€$-"
# BAAI/bge-reranker-v2-m3's config.json (XLM-RoBERTa large, 8k positions, one relevance label).
BGE_RERANKER_V2_M3 = dict(
    vocab_size=250002,
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    max_position_embeddings=8194,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    num_labels=1,
)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]  # the text model's attention


def unigram_tokenizer():
    """A tiny ``XLMRobertaTokenizer``: the special tokens, each question word whole after "▁"
    (and capitalised), single characters as the fallback, ``<mask>`` last."""
    from transformers import XLMRobertaTokenizer

    words = [*QUESTION_WORDS, *TALK_WORDS]
    words = dict.fromkeys(words + [word.title() for word in words])
    pieces = [(token, 0.0) for token in SPECIALS]
    pieces += [(f"\u2581{word}", -1.0) for word in words]
    pieces += [(char, -5.0) for char in ["\u2581", *CHARACTERS]]
    return XLMRobertaTokenizer(vocab=[*pieces, ("<mask>", 0.0)])


def cross_encoder_config(tokenizer, **overrides):
    """An XLM-RoBERTa sequence-classification config: the tiny text tower, one label."""
    from transformers import XLMRobertaConfig

    settings = TEXT | dict(
        vocab_size=len(tokenizer),
        max_position_embeddings=514,  # 512 tokens after XLM-RoBERTa's 2 reserved positions
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        num_labels=1,
    )
    return XLMRobertaConfig(**(settings | overrides))


def build_xlm_roberta_reranker(out_root: Path) -> Path:
    """The tiny cross-encoder (model + tokenizer), saved as bge-reranker-v2-m3 is."""
    folder = Path(out_root) / "xlm_roberta_reranker"
    if is_built(folder):
        return folder
    from transformers import XLMRobertaForSequenceClassification

    seed(40)
    tokenizer = unigram_tokenizer()
    model = XLMRobertaForSequenceClassification(cross_encoder_config(tokenizer)).eval()
    return save(folder, tokenizer, model)


def xlm_roberta_reranker_at_scale(layers: int | None = None):
    """bge-reranker-v2-m3's architecture at its published size (``layers`` overrides the depth,
    for a quick check), random weights on the default device and dtype: (model, tokenizer). The
    tokenizer is the tiny one: the benchmark feeds token ids of the real lengths."""
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    settings = BGE_RERANKER_V2_M3 | ({"num_hidden_layers": layers} if layers else {})
    model = XLMRobertaForSequenceClassification(XLMRobertaConfig(**settings)).eval()
    return model, unigram_tokenizer()


def build_monoqwen2_vl(out_root: Path) -> Path:
    """A LoRA adapter over the tiny Qwen2-VL answerer, in MonoQwen2-VL-v0.1's layout."""
    folder = Path(out_root) / "monoqwen2_vl"
    if is_built(folder):
        return folder
    from transformers import Qwen2VLForConditionalGeneration

    from devtools.tiny_models.qwen import build_qwen2_vl

    base_folder = build_qwen2_vl(out_root).resolve()
    base = Qwen2VLForConditionalGeneration.from_pretrained(str(base_folder), dtype=torch.float32)
    seed(41)
    # Random A and B: the adapter really moves the logits.
    adapter = random_lora(base, base_folder, LORA_TARGETS, "CAUSAL_LM", alpha=8)
    folder.mkdir(parents=True, exist_ok=True)
    adapter.save_pretrained(folder)
    return folder
