"""Tiny Qwen3-VL and Qwen3.5 checkpoints: the ColQwen3 (320-d vectors) and ColQwen3.5 retrievers,
the Qwen3-VL (dense and MoE) and Qwen3.5 answerers. Qwen3.5's text model mixes Gated DeltaNet
linear-attention layers with full attention; its vision tower is Qwen3-VL's.

Real architectures (Qwen3-VL vision tower with 16 px patches merged 2 x 2, so one visual token
covers 32 x 32 pixels, DeepStack features, interleaved M-RoPE text model), random seeded
weights, and the Qwen tokenizer of ``devtools.tiny_models.qwen`` (the same special tokens).
"""

from __future__ import annotations

from functools import partial

from devtools.tiny_models.common import randomize_bias
from devtools.tiny_models.qwen import HEAD_DIM, TOWER, _token_ids, family, vision, vl_config
from devtools.tiny_models.qwen import processor as qwen_processor

PATCH_SIZE = 16  # Qwen3-VL: one merged visual token covers 32 x 32 pixels

processor = partial(
    qwen_processor,
    patch_size=PATCH_SIZE,
    video_processor="transformers.models.qwen3_vl.video_processing_qwen3_vl.Qwen3VLVideoProcessor",
    image_options=dict(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]),  # as Qwen3-VL's
)

VISION = vision(
    PATCH_SIZE, **TOWER, num_position_embeddings=256
)  # a 16 x 16 position table, interpolated to each page's grid
QWEN3_VL_TEXT = dict(
    head_dim=HEAD_DIM,
    rope_parameters={
        "rope_type": "default",
        "rope_theta": 5000000.0,
        "mrope_section": [4, 6, 6],  # sums to HEAD_DIM // 2 (real: [24, 20, 20] for 128)
        "mrope_interleaved": True,
    },
)
qwen3_vl_config = partial(
    vl_config,
    "Qwen3VLConfig",
    text=QWEN3_VL_TEXT,
    vision=VISION | dict(deepstack_visual_indexes=[0]),
)
# Qwen3-VL-30B-A3B's shape, tiny: 4 experts, 2 per token.
qwen3_vl_moe_config = partial(
    vl_config,
    "Qwen3VLMoeConfig",
    text=QWEN3_VL_TEXT | dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32),
    vision=VISION | dict(deepstack_visual_indexes=[0]),
)
# Qwen3.5: one linear-attention (Gated DeltaNet) and one full-attention layer, a quarter of each
# head rotated (M-RoPE over 8 of 32 dimensions), Qwen3-VL's vision tower.
qwen3_5_config = partial(
    vl_config,
    "Qwen3_5Config",
    text=dict(
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
    ),
    vision=VISION,
)

# ColQwen3: a Qwen3-VL backbone + 320-d projection; ColQwen3.5: a Qwen3.5 backbone + a 192-d
# projection (its width comes from the config's ``dim``).
qwen3 = partial(family, make=processor)
build_colqwen3 = qwen3("colqwen3", 20, "ColQwen3", "ColQwen3Processor", qwen3_vl_config)
build_colqwen3_5 = qwen3(
    "colqwen3_5", 23, "ColQwen3_5", "ColQwen3_5Processor", partial(qwen3_5_config, dim=192)
)
answerer = partial(qwen3, processor_class="Qwen3VLProcessor", answers=True)
build_qwen3_vl = answerer("qwen3_vl", 21, "Qwen3VLForConditionalGeneration", config=qwen3_vl_config)
build_qwen3_vl_moe = answerer(
    "qwen3_vl_moe", 22, "Qwen3VLMoeForConditionalGeneration", config=qwen3_vl_moe_config
)
build_qwen3_5 = answerer("qwen3_5", 24, "Qwen3_5ForConditionalGeneration", config=qwen3_5_config)


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

    made = processor(ColQwen3Processor, AT_SCALE_VISUAL_TOKENS)
    vision = AT_SCALE_VISION | ({"deepstack_visual_indexes": [0]} if layers else {})
    return _rebuilt(ColQwen3, made, qwen3_vl_config, [24, 20, 20], AT_SCALE_TEXT, vision, layers)


def _rebuilt(
    model_class, made, config_fn, mrope_section, text: dict, vision: dict, layers, **extra
):
    """(model, processor): ``model_class`` on the tiny ``config_fn`` config with the ``text``
    and ``vision`` settings (``layers`` overriding both layer counts; ``layer_types`` derived
    again from the layer count), its projection bias randomised."""
    config = config_fn(made.tokenizer, tie_word_embeddings=True, **extra)
    text = config.text_config.to_dict() | text
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": mrope_section}
    text.pop("layer_types", None)
    vision = config.vision_config.to_dict() | vision
    if layers:
        text["num_hidden_layers"], vision["depth"] = layers, layers
    config = type(config)(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=True,
        **_token_ids(made.tokenizer),
        **extra,
    )
    model = model_class(config).eval()
    randomize_bias(model.custom_text_proj)
    return model, made


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

    made = processor(ColQwen3_5Processor, AT_SCALE_VISUAL_TOKENS)
    # 64 rotated dimensions of 256 (partial_rotary_factor 0.25): 32 frequencies = 11 + 11 + 10
    return _rebuilt(
        ColQwen3_5,
        made,
        qwen3_5_config,
        [11, 11, 10],
        AT_SCALE_3_5_TEXT,
        AT_SCALE_3_5_VISION,
        layers,
        dim=AT_SCALE_3_5_DIM,
    )
