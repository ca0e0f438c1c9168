"""A tiny ColModernVBert: ModernVBert (a ModernBERT encoder reading SigLIP image tokens,
pixel-shuffled by 2) with a 128-d projection, behind colpali-engine's Idefics3-style processor,
so pages are tiled exactly as the tiny ColIdefics3's (``devtools.tiny_models.idefics``): 64-px
tiles of 8 x 8 patches, 16 ``<image>`` tokens each, plus a global tile."""

from __future__ import annotations

from devtools.tiny_models.common import SIGLIP, TEXT, builder, randomize_bias, scaled
from devtools.tiny_models.idefics import (
    AT_SCALE_TILE,
    AT_SCALE_TILES,
    AT_SCALE_VISION,
    PATCH_SIZE,
    SCALE_FACTOR,
    TILE_SIZE,
    _processor,
    build_tokenizer,
)

BEGIN = "<|begin_of_text|>"  # the processor's page prompt starts with it


def _with_begin(processor_class, *sizes, **options):
    """``idefics._processor`` with SmolVLM's tokenizer plus the page prompt's first token."""
    from tokenizers import AddedToken

    tokenizer = build_tokenizer()
    tokenizer.add_tokens([AddedToken(BEGIN, special=True, normalized=False)])
    return _processor(processor_class, *sizes, tokenizer=tokenizer, **options)


def modernvbert_config(tokenizer):
    from transformers import ModernVBertConfig

    ids = tokenizer.convert_tokens_to_ids
    pad, begin, end = ids("<|im_end|>"), ids(BEGIN), ids("<end_of_utterance>")
    text = TEXT | dict(
        model_type="modernbert",
        vocab_size=len(tokenizer),
        max_position_embeddings=8192,
        global_attn_every_n_layers=2,
        local_attention=64,
        pad_token_id=pad,
        bos_token_id=begin,
        eos_token_id=end,
        cls_token_id=begin,
        sep_token_id=end,
    )
    vision = SIGLIP | dict(image_size=TILE_SIZE, patch_size=PATCH_SIZE)
    return ModernVBertConfig(
        text_config=text,
        vision_config={"model_type": "siglip_vision_model", **vision},
        image_token_id=ids("<image>"),
        pixel_shuffle_factor=SCALE_FACTOR,
    )


build_colmodernvbert = builder(
    "colmodernvbert",
    40,
    "ColModernVBert",
    "ColModernVBertProcessor",
    _with_begin,
    modernvbert_config,
)


def colmodernvbert_at_scale(layers: int | None = None):
    """A ``ColModernVBert`` at ModernVBERT's size (250M: a ModernBERT encoder 768 wide with 22
    layers, 12 heads, MLP 1152; a SigLIP base vision tower, 768 wide, 12 layers, on 512-px tiles
    of 16-px patches shuffled by 4 into 64 tokens: colSmol's), ``layers`` overriding both layer
    counts; in memory with its processor (tiles of 512 px, pages up to 4 x 4 tiles)."""
    from colpali_engine.models import ColModernVBert, ColModernVBertProcessor
    from transformers import ModernVBertConfig

    processor = _with_begin(
        ColModernVBertProcessor, AT_SCALE_TILE, AT_SCALE_TILES, 64, chat_template=None
    )
    config = scaled(
        modernvbert_config(processor.tokenizer),
        layers,
        text_config=dict(
            hidden_size=768,
            intermediate_size=1152,
            num_hidden_layers=22,
            num_attention_heads=12,
            global_attn_every_n_layers=3,
            local_attention=128,
        ),
        vision_config=AT_SCALE_VISION,
    )
    model_config = ModernVBertConfig(
        text_config=config["text_config"],
        vision_config=config["vision_config"],
        image_token_id=config["image_token_id"],
        pixel_shuffle_factor=4,
    )
    model = ColModernVBert(model_config).eval()
    randomize_bias(model.custom_text_proj)
    return model, processor
