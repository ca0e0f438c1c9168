"""Tiny Qwen-VL checkpoints: ColQwen2 / ColQwen2.5 retrievers, Qwen2-VL / Qwen2.5-VL answerers.

Real architectures (Qwen2-VL / Qwen2.5-VL vision towers with 14 px patches and 2 x 2 patch merging,
M-RoPE text models), random seeded weights, a small GPT-2 byte-level BPE tokenizer carrying the real
Qwen special tokens and the real Qwen2-VL chat template. Everything is built offline in seconds.
The processor, configs and family rows here serve ``qwen3`` and ``omni`` too.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path

from devtools.tiny_models.common import (
    QUESTION_WORDS,
    TALK_WORDS,
    TEXT,
    builder,
    byte_level_bpe,
    is_built,
    load,
    randomize_bias,
    save,
    seed,
)
from devtools.tiny_models.common import generation_config as greedy

PATCH_SIZE = 14  # as the real models: one merged visual token covers 28 x 28 pixels
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
# Visual tokens an image: ColQwen pages up to 80 (an A4 page becomes a 7 x 10 grid, portrait),
# answerer images 4 to 64.
MIN_VISUAL_TOKENS, RETRIEVER_MAX_VISUAL_TOKENS, GENERATOR_MAX_VISUAL_TOKENS = 4, 80, 64

TEXT_HIDDEN = TEXT["hidden_size"]
TEXT_HEADS = TEXT["num_attention_heads"]
HEAD_DIM = TEXT_HIDDEN // TEXT_HEADS
# M-RoPE (temporal, height, width) split; sums to HEAD_DIM // 2 (real: [16, 24, 24] for 128).
MROPE_SECTION = [4, 6, 6]
assert sum(MROPE_SECTION) == HEAD_DIM // 2

# The real Qwen2.5-VL added tokens (ids 151643..151664 there), in the real order.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Added (never split) but not special in the real tokenizer: decoded as text.
NON_SPECIAL = [
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]

# The real Qwen2-VL / Qwen2.5-VL chat template (chat_template.json of Qwen/Qwen2-VL-*-Instruct).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

WORDS = [*QUESTION_WORDS, *TALK_WORDS, "user", "assistant", "system", "helpful"]


def qwen2_tokenizer(after: list[str], extra_special_tokens, **options):
    """A tiny ``Qwen2Tokenizer``: byte-level BPE as Qwen's (256 byte symbols, merged word pieces,
    then ``after``), turns ending at <|im_end|>, padding with <|endoftext|>."""
    from transformers import Qwen2Tokenizer

    vocab, merges = byte_level_bpe(WORDS, after=after)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=extra_special_tokens,
        errors="replace",
        split_special_tokens=False,
        **options,
    )


def build_tokenizer():
    """A tiny ``Qwen2Tokenizer`` with the real special tokens and chat template."""
    from tokenizers import AddedToken

    tokenizer = qwen2_tokenizer(
        [*SPECIAL_TOKENS, *NON_SPECIAL],
        [token for token in SPECIAL_TOKENS if token not in ("<|endoftext|>", "<|im_end|>")],
        model_max_length=32768,
    )
    tokenizer.add_tokens(
        [AddedToken(token, special=False, normalized=False) for token in NON_SPECIAL]
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def processor(
    processor_class,
    max_tokens: int,
    *,
    patch_size: int = PATCH_SIZE,
    video_processor: str = "Qwen2VLVideoProcessor",
    image_options: dict | None = None,
    tokenizer=None,
    chat_template: str = CHAT_TEMPLATE,
    **parts,
):
    """A Qwen-VL processor: images (and video) in ``patch_size`` patches merged 2 x 2, from 4 to
    ``max_tokens`` merged tokens an image; the Qwen tokenizer unless ``tokenizer`` is given."""
    from transformers import Qwen2VLImageProcessor

    token_pixels = (patch_size * MERGE_SIZE) ** 2
    geometry = dict(patch_size=patch_size, temporal_patch_size=TEMPORAL_PATCH_SIZE)
    pixels = dict(min_pixels=MIN_VISUAL_TOKENS * token_pixels, max_pixels=max_tokens * token_pixels)
    sizes = geometry | pixels | {"merge_size": MERGE_SIZE}
    return processor_class(
        image_processor=Qwen2VLImageProcessor(**sizes, **(image_options or {})),
        tokenizer=tokenizer or build_tokenizer(),
        video_processor=load(video_processor)(**sizes),
        chat_template=chat_template,
        **parts,
    )


def _text_config(tokenizer) -> dict:
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return TEXT | dict(
        vocab_size=len(tokenizer),
        num_key_value_heads=1,
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": MROPE_SECTION,
        },
        bos_token_id=endoftext,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=endoftext,
    )


def _token_ids(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return dict(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def vision(patch_size: int = PATCH_SIZE, **settings) -> dict:
    """A tiny Qwen vision tower: 2 blocks of 2 heads over ``patch_size`` patches, merged 2 x 2."""
    tower = dict(depth=2, num_heads=2, in_channels=3, patch_size=patch_size)
    tower |= dict(spatial_merge_size=MERGE_SIZE, temporal_patch_size=TEMPORAL_PATCH_SIZE)
    return tower | settings


# Qwen2.5-VL's, Omni's and Qwen3-VL's towers: 32 wide, merged into text-width tokens.
TOWER = dict(hidden_size=32, intermediate_size=64, out_hidden_size=TEXT_HIDDEN)


def vl_config(config_class: str, tokenizer, *, vision: dict, text: dict | None = None, **options):
    """A Qwen-VL config: the tiny text model (updated by ``text``), ``vision``, Qwen's token ids.
    Copies, since the settings tables here are shared by every build of a process."""
    return load(config_class)(
        text_config=_text_config(tokenizer) | copy.deepcopy(text or {}),
        vision_config=copy.deepcopy(vision),
        **_token_ids(tokenizer),
        **options,
    )


qwen2_vl_config = partial(
    vl_config,
    "Qwen2VLConfig",
    vision=vision(embed_dim=32, hidden_size=TEXT_HIDDEN, mlp_ratio=2),  # merged to the text width
)
qwen2_5_vl_config = partial(
    vl_config,
    "Qwen2_5_VLConfig",
    vision=vision(
        **TOWER,
        hidden_act="silu",
        window_size=112,  # 8 x 8 patch windows, as the real model
        fullatt_block_indexes=[1],  # block 0 windowed, block 1 full attention
        tokens_per_second=2,
    ),
)


def generation_config(tokenizer):
    """Greedy decoding that stops at the end of the assistant's turn, as Qwen's answerers do."""
    endoftext, end = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    return greedy(endoftext, [end, endoftext], endoftext)


def _answer(model, tokenizer) -> None:
    model.generation_config = generation_config(tokenizer)


def family(name, seed_value, model_class, processor_class, config, answers=False, make=processor):
    """``build_<name>``: a ColQwen retriever (pages of up to 80 visual tokens) or, ``answers``, an
    answerer (images of 4 to 64) with an untied head (as Qwen2-VL-7B): a tied random head just
    echoes the last prompt token ("\\n") forever, an untied one greedily writes varied words.
    ``make`` is the processor function (``processor`` with the family's geometry)."""
    tokens = GENERATOR_MAX_VISUAL_TOKENS if answers else RETRIEVER_MAX_VISUAL_TOKENS
    return builder(
        name,
        seed_value,
        model_class,
        processor_class,
        partial(make, max_tokens=tokens),
        partial(config, tie_word_embeddings=not answers),
        _answer if answers else None,
    )


# ColQwen2 / ColQwen2.5: a Qwen2-VL / Qwen2.5-VL backbone + a 128-d projection.
build_colqwen2 = family("colqwen2", 10, "ColQwen2", "ColQwen2Processor", qwen2_vl_config)
build_colqwen2_5 = family("colqwen2_5", 11, "ColQwen2_5", "ColQwen2_5_Processor", qwen2_5_vl_config)
build_qwen2_vl = family(
    "qwen2_vl", 12, "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor", qwen2_vl_config, True
)
build_qwen2_5_vl = family(
    "qwen2_5_vl",
    13,
    "Qwen2_5_VLForConditionalGeneration",
    "Qwen2_5_VLProcessor",
    qwen2_5_vl_config,
    True,
)


# Qwen2-VL-2B's widths (text: 1536 wide, 12 heads of 128, 2 KV heads, MLP 8960; vision: 1280
# wide, 16 heads, MLP ratio 4) with fewer layers: random weights cost the same compute per
# layer as trained ones, so a benchmark on this model measures real per-layer costs.
MID_TEXT = dict(
    hidden_size=1536, intermediate_size=8960, num_attention_heads=12, num_key_value_heads=2
)
MID_VISION = dict(embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16)
MID_MROPE_SECTION = [16, 24, 24]  # Qwen2-VL's, for 128-wide heads


FULL_TEXT_LAYERS, FULL_VISION_DEPTH = 28, 32  # Qwen2-VL-2B, the base of vidore/colqwen2-v1.0
FULL_VISUAL_TOKENS = 768  # ColQwen2's page budget (max_num_visual_tokens)


def colqwen2_at_scale(
    text_layers: int = FULL_TEXT_LAYERS,
    vision_depth: int = FULL_VISION_DEPTH,
    visual_tokens: int = FULL_VISUAL_TOKENS,
):
    """A ``ColQwen2`` at Qwen2-VL-2B's widths with ``text_layers`` + ``vision_depth`` layers
    (the real counts by default), pages capped at ``visual_tokens``, in memory with its
    processor: (model, processor). Only the vocabulary is the test kit's (the embedding table is
    a lookup: no compute per page). Weights are random, on the default device and dtype."""
    from colpali_engine.models import ColQwen2, ColQwen2Processor

    made = processor(ColQwen2Processor, visual_tokens)
    model = ColQwen2(_config_at_scale(made.tokenizer, text_layers, vision_depth)).eval()
    randomize_bias(model.custom_text_proj)
    return model, made


def qwen2_vl_at_scale(
    text_layers: int, vision_depth: int, visual_tokens: int = 256, vocab_size: int | None = None
):
    """A ``Qwen2VLForConditionalGeneration`` answerer at Qwen2-VL-2B's widths with
    ``text_layers`` + ``vision_depth`` layers, in memory with its processor (as
    ``colqwen2_at_scale``; untied head, random weights; ``vocab_size`` sizes the embedding table
    and the head, e.g. the real 151,936 for timing decoding): (model, processor)."""
    from transformers import Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    made = processor(Qwen2VLProcessor, visual_tokens)
    config = _config_at_scale(made.tokenizer, text_layers, vision_depth, tie_word_embeddings=False)
    if vocab_size:
        config.text_config.vocab_size = config.vocab_size = vocab_size
    return Qwen2VLForConditionalGeneration(config).eval(), made


def _config_at_scale(tokenizer, text_layers: int, vision_depth: int, **options):
    text = MID_TEXT | {"num_hidden_layers": text_layers}
    text["rope_parameters"] = _text_config(tokenizer)["rope_parameters"]
    text["rope_parameters"]["mrope_section"] = MID_MROPE_SECTION
    scaled = vision() | MID_VISION | {"depth": vision_depth}
    return vl_config("Qwen2VLConfig", tokenizer, text=text, vision=scaled, **options)


def build_colqwen2_mid(
    out_root: Path, text_layers: int = 2, vision_depth: int = 2, visual_tokens: int = 256
) -> Path:
    """``colqwen2_at_scale`` with few layers (2 + 2: the CPU benchmark's mid-size model), saved."""
    folder = Path(out_root) / f"colqwen2_mid-{text_layers}x{vision_depth}-{visual_tokens}"
    if is_built(folder):
        return folder
    seed(12)
    model, made = colqwen2_at_scale(text_layers, vision_depth, visual_tokens)
    return save(folder, made, model)
