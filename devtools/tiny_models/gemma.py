"""Tiny PaliGemma-family checkpoints: ColPali, a ColPali LoRA adapter and a PaliGemma answerer.

Real architectures (SigLIP vision tower + Gemma text model), random seeded weights, a small
byte-fallback BPE Gemma tokenizer. Everything is built offline in a few seconds.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from devtools.tiny_models.common import (
    QUESTION_WORDS,
    SIGLIP,
    TALK_WORDS,
    TEXT,
    builder,
    generation_config,
    is_built,
    random_lora,
    randomize_bias,
    seed,
)

IMAGE_SIZE = 112  # square input; patch 14 -> an 8 x 8 patch grid = 64 image tokens
PATCH_SIZE = 14
IMAGE_SEQ_LENGTH = (IMAGE_SIZE // PATCH_SIZE) ** 2
TEXT_HIDDEN = TEXT["hidden_size"]

SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]  # ids 0..4, as in Gemma
IMAGE_TOKEN = "<image>"

# Whole-word pieces (each gets a "▁" prefix and a chain of BPE merges building it left to right).
WORDS = [*QUESTION_WORDS, "en", "english", *TALK_WORDS]


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Gemma-style BPE: specials, byte fallback <0x00>..<0xFF>, characters, merged word pieces."""
    vocab: dict[str, int] = {}

    def add(token: str) -> None:
        if token not in vocab:
            vocab[token] = len(vocab)

    for token in SPECIAL_TOKENS:
        add(token)
    for byte in range(256):
        add(f"<0x{byte:02X}>")
    add("\n")
    add("▁")
    for char in (
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        ".,;:!?'\"()[]{}-_/\\%$€£&@#*+=<>|~^`"
    ):
        add(char)
        add("▁" + char)
    merges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    # Only "▁word" chains: every merge's left side starts with "▁", so chains never interfere and
    # a word after a space always becomes one piece (a text's first word, with no space, stays
    # in characters).
    for word in dict.fromkeys(WORDS + [word.capitalize() for word in WORDS]):
        piece = "▁" + word[0]
        for char in word[1:]:
            pair = (piece, char)
            piece += char
            if pair not in seen:
                seen.add(pair)
                merges.append(pair)
            add(piece)
    # Single "▁x" pieces come from merging "▁" with the character.
    for token in list(vocab):
        if len(token) == 2 and token[0] == "▁":
            pair = ("▁", token[1])
            if pair not in seen:
                seen.add(pair)
                merges.insert(0, pair)
    return vocab, merges


def build_tokenizer(extra_special_tokens: dict | None = None, added: list[str] = ()):
    """A tiny Gemma tokenizer: byte fallback, ▁ word pieces, Gemma's specials and ``<image>``
    (or the ``extra_special_tokens`` given), then the ``added`` tokens in the vocabulary."""
    from transformers import GemmaTokenizer

    vocab, merges = _vocab_and_merges()
    for token in added:
        vocab.setdefault(token, len(vocab))
    return GemmaTokenizer(
        vocab=vocab,
        merges=merges,
        extra_special_tokens=extra_special_tokens or {"image_token": IMAGE_TOKEN},
    )


def _processor(processor_class, image_size: int = IMAGE_SIZE):
    """PaliGemmaProcessor (or ColPaliProcessor): SigLIP image processor + tiny Gemma tokenizer."""
    from transformers import SiglipImageProcessor

    image_processor = SiglipImageProcessor(
        size={"height": image_size, "width": image_size},
        image_seq_length=(image_size // PATCH_SIZE) ** 2,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        resample=3,
    )
    # The processor adds the 1024 <locXXXX> + 128 <segXXX> tokens to the tokenizer itself.
    return processor_class(image_processor=image_processor, tokenizer=build_tokenizer())


TINY_VISION = SIGLIP
TINY_TEXT = TEXT | dict(num_key_value_heads=1, head_dim=32)
# PaliGemma-3B at 448 px, as vidore/colpali-v1.3's base: SigLIP so400m (27 layers, 1152 wide, 16
# heads, MLP 4304) and Gemma-2B (18 layers, 2048 wide, 8 heads of 256, 1 KV head, MLP 16384).
FULL_VISION = dict(
    hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16
)
FULL_TEXT = dict(
    hidden_size=2048,
    intermediate_size=16384,
    num_hidden_layers=18,
    num_attention_heads=8,
    num_key_value_heads=1,
    head_dim=256,
)
FULL_IMAGE_SIZE = 448  # 32 x 32 patches = 1024 image tokens per page


def _config(
    tokenizer,
    vision_sizes=TINY_VISION,
    text_sizes=TINY_TEXT,
    image_size=IMAGE_SIZE,
    gemma2: bool = False,
):
    """PaliGemmaConfig sized after the processor has grown the tokenizer's vocabulary; with
    ``gemma2``, PaliGemma 2's (a Gemma 2 text model)."""
    from transformers import Gemma2Config, GemmaConfig, PaliGemmaConfig, SiglipVisionConfig

    vocab_size = len(tokenizer)
    ids = dict(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vision = SiglipVisionConfig(
        **vision_sizes,
        image_size=image_size,
        patch_size=PATCH_SIZE,
        vision_use_head=False,
    )
    text_class = Gemma2Config if gemma2 else GemmaConfig
    text = text_class(vocab_size=vocab_size, **text_sizes, max_position_embeddings=2048, **ids)
    return PaliGemmaConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vocab_size=vocab_size,
        projection_dim=text_sizes["hidden_size"],
        hidden_size=text_sizes["hidden_size"],
        **ids,
    )


# ColPali: a PaliGemma backbone + 128-d projection.
build_colpali = builder("colpali", 0, "ColPali", "ColPaliProcessor", _processor, _config)


def colpali_at_scale(vision_layers: int | None = None, text_layers: int | None = None):
    """A ``ColPali`` at PaliGemma-3B-448's real widths and (unless overridden) layer counts, in
    memory, with its processor: (model, processor). Only the vocabulary is the test kit's (the
    embedding table is a lookup: it costs no compute per page). Weights are random, created on
    the current default device and dtype."""
    from colpali_engine.models import ColPali, ColPaliProcessor

    vision = FULL_VISION | ({"num_hidden_layers": vision_layers} if vision_layers else {})
    text = FULL_TEXT | ({"num_hidden_layers": text_layers} if text_layers else {})
    processor = _processor(ColPaliProcessor, FULL_IMAGE_SIZE)
    model = ColPali(_config(processor.tokenizer, vision, text, FULL_IMAGE_SIZE)).eval()
    randomize_bias(model.custom_text_proj)
    return model, processor


LORA_TARGETS = (
    r"(.*(language_model).*(down_proj|gate_proj|up_proj|k_proj|q_proj|v_proj|o_proj).*$"
    r"|.*(custom_text_proj).*$)"
)


def build_colpali_lora(out_root: Path) -> Path:
    """A PEFT LoRA adapter over the tiny ColPali, laid out like vidore/colpali-v1.3."""
    folder = Path(out_root) / "colpali_lora"
    if is_built(folder):
        return folder
    from colpali_engine.models import ColPali, ColPaliProcessor

    base_folder = build_colpali(out_root).resolve()
    seed(1)
    base = ColPali.from_pretrained(str(base_folder), torch_dtype=torch.float32)
    # Random A and B: the adapter really changes the embeddings.
    peft_model = random_lora(base, base_folder, LORA_TARGETS, "FEATURE_EXTRACTION", alpha=4)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.5)  # keep the perturbation moderate
    folder.mkdir(parents=True, exist_ok=True)
    ColPaliProcessor.from_pretrained(str(base_folder)).save_pretrained(folder)
    peft_model.save_pretrained(folder)
    return folder


def only_words(weight: torch.Tensor, tokenizer) -> None:
    """Zero the rows of ``weight`` (a token embedding table or head) of every token but the
    "▁word" pieces, so that greedy decoding emits readable words.

    A random model echoes its last input token (here "\\n") forever, so a streamed answer is
    blank. With the other rows zero those tokens score logit 0 while some word always scores
    higher: answers are a few words (no <eos>, so generation runs to max_new_tokens), never
    <loc>/<seg>/byte tokens.
    """
    keep = {tokenizer.convert_tokens_to_ids("▁" + word) for word in WORDS}
    drop = torch.tensor([index not in keep for index in range(len(tokenizer))])
    with torch.no_grad():
        weight[drop] = 0.0


def _answer_in_words(model, tokenizer) -> None:
    only_words(model.get_input_embeddings().weight, tokenizer)  # tied: the head's rows too
    model.generation_config = generation_config(
        tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )


# PaliGemma ("mix"-style answerer); PaliGemma 2: the same classes over a Gemma 2 text model.
paligemma = partial(
    builder,
    model_class="PaliGemmaForConditionalGeneration",
    processor_class="PaliGemmaProcessor",
    processor=_processor,
    answerer=_answer_in_words,
)
build_paligemma = paligemma("paligemma", 2, config=partial(_config, gemma2=False))
build_paligemma2 = paligemma("paligemma2", 3, config=partial(_config, gemma2=True))
