"""Tiny Qwen3-VL and Qwen3.5 checkpoints: the ColQwen3 (320-d vectors) and ColQwen3.5 retrievers,
the Qwen3-VL (dense and MoE) and Qwen3.5 answerers. Qwen3.5's text model mixes Gated DeltaNet
linear-attention layers with full attention; its vision tower is Qwen3-VL's.

Real architectures (Qwen3-VL vision tower with 16 px patches merged 2 x 2, so one visual token
covers 32 x 32 pixels, DeepStack features, interleaved M-RoPE text model), random seeded
weights, and the Qwen tokenizer of ``devtools.tiny_models.qwen`` (the same special tokens).
"""

from __future__ import annotations

import functools
from pathlib import Path

from devtools.tiny_models.common import is_built, randomize_bias, save, seed
from devtools.tiny_models.qwen import (
    CHAT_TEMPLATE,
    TEXT_HEADS,
    TEXT_HIDDEN,
    _text_config,
    _token_ids,
    build_tokenizer,
    generation_config,
)

PATCH_SIZE = 16  # Qwen3-VL: one merged visual token covers 32 x 32 pixels
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
TOKEN_PIXELS = (PATCH_SIZE * MERGE_SIZE) ** 2
RETRIEVER_MAX_VISUAL_TOKENS = 80
GENERATOR_MIN_PIXELS, GENERATOR_MAX_PIXELS = 4 * TOKEN_PIXELS, 64 * TOKEN_PIXELS
HEAD_DIM = TEXT_HIDDEN // TEXT_HEADS
MROPE_SECTION = [4, 6, 6]  # sums to HEAD_DIM // 2 (real: [24, 20, 20] for 128)


def _processor(processor_class, min_pixels: int, max_pixels: int):
    from transformers import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    sizes = dict(patch_size=PATCH_SIZE, temporal_patch_size=TEMPORAL_PATCH_SIZE)
    sizes |= dict(merge_size=MERGE_SIZE, min_pixels=min_pixels, max_pixels=max_pixels)
    half = dict(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])  # as Qwen3-VL's
    return processor_class(
        image_processor=Qwen2VLImageProcessor(**sizes, **half),
        tokenizer=build_tokenizer(),
        video_processor=Qwen3VLVideoProcessor(**sizes),
        chat_template=CHAT_TEMPLATE,
    )


def qwen3_vl_config(tokenizer, tie_word_embeddings: bool = True, moe: bool = False):
    from transformers import Qwen3VLConfig, Qwen3VLMoeConfig

    text = _text_config(tokenizer) | dict(
        head_dim=HEAD_DIM,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 5000000.0,
            "mrope_section": MROPE_SECTION,
            "mrope_interleaved": True,
        },
    )
    if moe:  # Qwen3-VL-30B-A3B's shape, tiny: 4 experts, 2 per token
        text |= dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)
    vision = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        in_channels=3,
        patch_size=PATCH_SIZE,
        spatial_merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        out_hidden_size=TEXT_HIDDEN,
        num_position_embeddings=256,  # a 16 x 16 table, interpolated to each page's grid
        deepstack_visual_indexes=[0],
    )
    config_class = Qwen3VLMoeConfig if moe else Qwen3VLConfig
    return config_class(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=tie_word_embeddings,
        **_token_ids(tokenizer),
    )


def qwen3_5_config(tokenizer, tie_word_embeddings: bool = True, dim: int | None = None):
    """Qwen3.5: one linear-attention (Gated DeltaNet) and one full-attention layer, a quarter of
    each head rotated (M-RoPE over 8 of 32 dimensions), Qwen3-VL's vision tower."""
    from transformers import Qwen3_5Config

    text = _text_config(tokenizer) | dict(
        head_dim=HEAD_DIM,
        layer_types=["linear_attention", "full_attention"],
        linear_key_head_dim=16,
        linear_value_head_dim=16,
        linear_num_key_heads=2,
        linear_num_value_heads=2,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000000.0,
            "partial_rotary_factor": 0.25,
            "mrope_section": [2, 1, 1],
            "mrope_interleaved": True,
        },
    )
    vision = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        in_channels=3,
        patch_size=PATCH_SIZE,
        spatial_merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        out_hidden_size=TEXT_HIDDEN,
        num_position_embeddings=256,
    )
    extra = {} if dim is None else {"dim": dim}
    return Qwen3_5Config(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=tie_word_embeddings,
        **_token_ids(tokenizer),
        **extra,
    )


def build_colqwen3(out_root: Path) -> Path:
    """A tiny ``ColQwen3`` (Qwen3-VL backbone + 320-d projection) and its processor."""
    folder = Path(out_root) / "colqwen3"
    if is_built(folder):
        return folder
    from colpali_engine.models import ColQwen3, ColQwen3Processor

    seed(20)
    processor = _processor(
        ColQwen3Processor, TOKEN_PIXELS * 4, RETRIEVER_MAX_VISUAL_TOKENS * TOKEN_PIXELS
    )
    model = ColQwen3(qwen3_vl_config(processor.tokenizer)).eval()
    randomize_bias(model.custom_text_proj)
    return save(folder, processor, model)


def build_colqwen3_5(out_root: Path) -> Path:
    """A tiny ``ColQwen3_5`` (Qwen3.5 backbone + a 192-d projection: its width comes from the
    config's ``dim``) and its processor."""
    folder = Path(out_root) / "colqwen3_5"
    if is_built(folder):
        return folder
    from colpali_engine.models import ColQwen3_5, ColQwen3_5Processor

    seed(23)
    processor = _processor(
        ColQwen3_5Processor, TOKEN_PIXELS * 4, RETRIEVER_MAX_VISUAL_TOKENS * TOKEN_PIXELS
    )
    model = ColQwen3_5(qwen3_5_config(processor.tokenizer, dim=192)).eval()
    randomize_bias(model.custom_text_proj)
    return save(folder, processor, model)


def _build_answerer(folder: Path, model_class, config_fn, seed_value: int) -> Path:
    from transformers import Qwen3VLProcessor

    seed(seed_value)
    processor = _processor(Qwen3VLProcessor, GENERATOR_MIN_PIXELS, GENERATOR_MAX_PIXELS)
    model = model_class(config_fn(processor.tokenizer, tie_word_embeddings=False)).eval()
    model.generation_config = generation_config(processor.tokenizer)
    return save(folder, processor, model)


def build_qwen3_vl(out_root: Path) -> Path:
    """A tiny dense ``Qwen3VLForConditionalGeneration`` answerer + ``Qwen3VLProcessor``."""
    folder = Path(out_root) / "qwen3_vl"
    if is_built(folder):
        return folder
    from transformers import Qwen3VLForConditionalGeneration

    return _build_answerer(folder, Qwen3VLForConditionalGeneration, qwen3_vl_config, 21)


def build_qwen3_vl_moe(out_root: Path) -> Path:
    """A tiny mixture-of-experts ``Qwen3VLMoeForConditionalGeneration`` answerer."""
    folder = Path(out_root) / "qwen3_vl_moe"
    if is_built(folder):
        return folder
    from transformers import Qwen3VLMoeForConditionalGeneration

    moe = functools.partial(qwen3_vl_config, moe=True)
    return _build_answerer(folder, Qwen3VLMoeForConditionalGeneration, moe, 22)


def build_qwen3_5(out_root: Path) -> Path:
    """A tiny ``Qwen3_5ForConditionalGeneration`` answerer (Qwen3.5 takes images) + processor."""
    folder = Path(out_root) / "qwen3_5"
    if is_built(folder):
        return folder
    from transformers import Qwen3_5ForConditionalGeneration

    return _build_answerer(folder, Qwen3_5ForConditionalGeneration, qwen3_5_config, 24)


# Qwen3-VL-4B-Instruct (the base of ColQwen3 fine-tunes), from its published config: text 2560
# wide, 36 layers, 32 heads of 128 with 8 KV heads, MLP 9728; vision 1024 wide, 24 blocks, 16
# heads, MLP 4096, DeepStack taps after blocks 5, 11 and 17.
AT_SCALE_TEXT = dict(
    hidden_size=2560,
    intermediate_size=9728,
    num_hidden_layers=36,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
)
AT_SCALE_VISION = dict(
    depth=24,
    hidden_size=1024,
    intermediate_size=4096,
    num_heads=16,
    out_hidden_size=2560,
    num_position_embeddings=2304,
    deepstack_visual_indexes=[5, 11, 17],
)
AT_SCALE_VISUAL_TOKENS = 768


def colqwen3_at_scale(layers: int | None = None):
    """A ``ColQwen3`` at Qwen3-VL-4B's size (``layers`` overrides both layer counts, for a
    quick check), pages capped at 768 visual tokens, in memory with its processor: (model,
    processor). Random weights, on the default device and dtype."""
    from colpali_engine.models import ColQwen3, ColQwen3Processor

    processor = _processor(
        ColQwen3Processor, TOKEN_PIXELS * 4, AT_SCALE_VISUAL_TOKENS * TOKEN_PIXELS
    )
    config = qwen3_vl_config(processor.tokenizer)
    text = config.text_config.to_dict() | AT_SCALE_TEXT
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": [24, 20, 20]}
    text.pop("layer_types", None)  # derived again from the layer count
    vision = config.vision_config.to_dict() | AT_SCALE_VISION
    if layers:
        vision["deepstack_visual_indexes"] = [0]
    return _rebuilt(ColQwen3, processor, config, text, vision, layers)


def _rebuilt(model_class, processor, config, text: dict, vision: dict, layers, **extra):
    """(model, processor): ``model_class`` on ``config`` with the ``text`` and ``vision``
    settings (``layers`` overriding both layer counts), its projection bias randomised."""
    if layers:
        text["num_hidden_layers"], vision["depth"] = layers, layers
    config = type(config)(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=True,
        **_token_ids(processor.tokenizer),
        **extra,
    )
    model = model_class(config).eval()
    randomize_bias(model.custom_text_proj)
    return model, processor


# Qwen3.5-4B (the base of athrael-soju/colqwen3.5-4.5B-v3, whose config sets ``dim: 320``), from
# its published config: text 2560 wide, 32 layers (every 4th full attention: 16 heads of 256,
# 4 KV heads, a quarter of each head rotated, M-RoPE sections 11/11/10; the other 24 Gated
# DeltaNet, 16 key heads and 32 value heads of 128, conv kernel 4), MLP 9216; Qwen3-VL-4B's
# vision tower without DeepStack.
AT_SCALE_3_5_TEXT = dict(
    hidden_size=2560,
    intermediate_size=9216,
    num_hidden_layers=32,
    num_attention_heads=16,
    num_key_value_heads=4,
    head_dim=256,
    linear_num_key_heads=16,
    linear_num_value_heads=32,
    linear_key_head_dim=128,
    linear_value_head_dim=128,
    linear_conv_kernel_dim=4,
)
AT_SCALE_3_5_VISION = {k: v for k, v in AT_SCALE_VISION.items() if k != "deepstack_visual_indexes"}
AT_SCALE_3_5_DIM = 320


def colqwen3_5_at_scale(layers: int | None = None):
    """A ``ColQwen3_5`` at Qwen3.5-4B's size with a 320-d projection (``layers`` overrides both
    layer counts, for a quick check), pages capped at 768 visual tokens, in memory with its
    processor: (model, processor). Random weights, on the default device and dtype."""
    from colpali_engine.models import ColQwen3_5, ColQwen3_5Processor

    processor = _processor(
        ColQwen3_5Processor, TOKEN_PIXELS * 4, AT_SCALE_VISUAL_TOKENS * TOKEN_PIXELS
    )
    config = qwen3_5_config(processor.tokenizer, dim=AT_SCALE_3_5_DIM)
    text = config.text_config.to_dict() | AT_SCALE_3_5_TEXT
    # 64 rotated dimensions of 256 (partial_rotary_factor 0.25): 32 frequencies = 11 + 11 + 10
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": [11, 11, 10]}
    text.pop("layer_types", None)  # derived again: full attention every 4th layer
    vision = config.vision_config.to_dict() | AT_SCALE_3_5_VISION
    return _rebuilt(ColQwen3_5, processor, config, text, vision, layers, dim=AT_SCALE_3_5_DIM)
