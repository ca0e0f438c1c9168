"""Tiny Gemma 3 checkpoints: the ColGemma3 retriever and the Gemma 3 answerer.

Real architectures (SigLIP vision tower, Gemma 3's average-pooling projector down to
``mm_tokens_per_image`` soft tokens, Gemma 3 text model with sliding and global layers), random
seeded weights, the tiny Gemma tokenizer of ``devtools.tiny_models.gemma`` plus Gemma 3's turn and
image tokens, and a chat template with the real one's layout. A page is squared to 112 px: 8 x 8
patches of 14 px, pooled 2 x 2 into a 4 x 4 grid of 16 image tokens (the real model: 896 px,
64 x 64 patches pooled into 16 x 16 = 256).
"""

from __future__ import annotations

from functools import partial

from devtools.tiny_models.common import SIGLIP, builder, generation_config, randomize_bias, scaled
from devtools.tiny_models.gemma import TINY_TEXT, only_words
from devtools.tiny_models.gemma import build_tokenizer as gemma_tokenizer

IMAGE_SIZE = 112
PATCH_SIZE = 14
MM_TOKENS = 16  # 4 x 4 pooled image tokens per page
TOKENS = {
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "image_token": "<image_soft_token>",
}
TURN_TOKENS = ["<start_of_turn>", "<end_of_turn>"]
# The layout of Gemma 3's template: turns of "user"/"model", images as <start_of_image>.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def build_tokenizer():
    tokenizer = gemma_tokenizer(dict(TOKENS), [*TURN_TOKENS, *TOKENS.values()])
    tokenizer.add_special_tokens({"additional_special_tokens": TURN_TOKENS})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _processor(processor_class, image_size: int = IMAGE_SIZE, mm_tokens: int = MM_TOKENS):
    from transformers import Gemma3ImageProcessor

    image_processor = Gemma3ImageProcessor(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pan_and_scan=False,
    )
    return processor_class(
        image_processor=image_processor,
        tokenizer=build_tokenizer(),
        chat_template=CHAT_TEMPLATE,
        image_seq_length=mm_tokens,
    )


def gemma3_config(tokenizer, tie_word_embeddings: bool = True):
    from transformers import Gemma3Config

    ids = tokenizer.convert_tokens_to_ids
    text = TINY_TEXT | dict(
        vocab_size=len(tokenizer),
        query_pre_attn_scalar=32,
        sliding_window=64,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vision = SIGLIP | dict(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, vision_use_head=False)
    return Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=MM_TOKENS,
        boi_token_index=ids(TOKENS["boi_token"]),
        eoi_token_index=ids(TOKENS["eoi_token"]),
        image_token_index=ids(TOKENS["image_token"]),
        tie_word_embeddings=tie_word_embeddings,
    )


def _answer_in_words(model, tokenizer) -> None:
    only_words(model.lm_head.weight, tokenizer)  # untied: readable greedy answers
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    model.generation_config = generation_config(
        tokenizer.bos_token_id, [tokenizer.eos_token_id, end_of_turn], tokenizer.pad_token_id
    )


# ColGemma3: a Gemma 3 backbone + 128-d projection.
build_colgemma3 = builder(
    "colgemma3", 30, "ColGemma3", "ColGemmaProcessor3", _processor, gemma3_config
)
build_gemma3 = builder(
    "gemma3",
    31,
    "Gemma3ForConditionalGeneration",
    "Gemma3Processor",
    _processor,
    partial(gemma3_config, tie_word_embeddings=False),
    _answer_in_words,
)


# gemma-3-4b-it (the base of ColGemma3 checkpoints such as Cognitive-Lab/ColNetraEmbed), from its
# published config and transformers' Gemma3TextConfig defaults: text 2560 wide, 34 layers (5
# sliding-window layers of 1024 tokens, then 1 global, repeated), 8 heads of 256 with 4 KV heads,
# MLP 10240; SigLIP 1152 wide, 27 layers, 16 heads, MLP 4304, 896-px pages in 14-px patches
# (64 x 64), pooled 4 x 4 into 256 image tokens.
AT_SCALE_TEXT = dict(
    hidden_size=2560,
    intermediate_size=10240,
    num_hidden_layers=34,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=256,
    query_pre_attn_scalar=256,
    sliding_window=1024,
    max_position_embeddings=131072,
    rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    },
)
AT_SCALE_VISION = dict(
    hidden_size=1152,
    intermediate_size=4304,
    num_hidden_layers=27,
    num_attention_heads=16,
    image_size=896,
)
AT_SCALE_MM_TOKENS = 256


def colgemma3_at_scale(layers: int | None = None):
    """A ``ColGemma3`` at gemma-3-4b-it's size (``layers`` overrides both layer counts, for a
    quick check), in memory with its processor (896-px pages, 256 image tokens): (model,
    processor). Only the vocabulary is the test kit's. Random weights, on the default device and
    dtype."""
    from colpali_engine.models import ColGemma3, ColGemmaProcessor3
    from transformers import Gemma3Config

    processor = _processor(ColGemmaProcessor3, AT_SCALE_VISION["image_size"], AT_SCALE_MM_TOKENS)
    tiny = scaled(
        gemma3_config(processor.tokenizer),
        layers,
        text_config=AT_SCALE_TEXT,
        vision_config=AT_SCALE_VISION,
    )
    config = Gemma3Config(
        text_config=tiny["text_config"],
        vision_config=tiny["vision_config"],
        mm_tokens_per_image=AT_SCALE_MM_TOKENS,
        boi_token_index=tiny["boi_token_index"],
        eoi_token_index=tiny["eoi_token_index"],
        image_token_index=tiny["image_token_index"],
        tie_word_embeddings=True,
    )
    model = ColGemma3(config).eval()
    randomize_bias(model.custom_text_proj)
    return model, processor
