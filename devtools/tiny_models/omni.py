"""A tiny ColQwen2.5-Omni: the Qwen2.5-Omni thinker (Qwen2.5-VL-style vision tower with 14 px
patches merged 2 x 2, a Whisper-style audio encoder, an M-RoPE text model) with a 128-d
projection, behind colpali-engine's processor, which lays a page out through the Omni chat
template. Pages are indexed as images; the audio tower is built (the real architecture) and idle.
"""

from __future__ import annotations

from pathlib import Path

from devtools.tiny_models.common import builder, randomize_bias, scaled
from devtools.tiny_models.qwen import (
    MERGE_SIZE,
    PATCH_SIZE,
    RETRIEVER_MAX_VISUAL_TOKENS,
    TEXT_HIDDEN,
    TOWER,
    _text_config,
    processor,
    qwen2_tokenizer,
    vision,
)

# The Omni tokenizer's named tokens (attribute -> token), as Qwen2.5-Omni's.
NAMED = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
TURNS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content %}"
    "<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer():
    tokenizer = qwen2_tokenizer([*TURNS, *NAMED.values()], {**NAMED})
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _processor(processor_class, max_tokens: int = RETRIEVER_MAX_VISUAL_TOKENS):
    from transformers import WhisperFeatureExtractor

    return processor(
        processor_class,
        max_tokens,
        feature_extractor=WhisperFeatureExtractor(feature_size=8),
        tokenizer=build_tokenizer(),
        chat_template=CHAT_TEMPLATE,
    )


def thinker_config(tokenizer):
    from transformers import Qwen2_5OmniThinkerConfig

    ids = tokenizer.convert_tokens_to_ids
    audio = dict(
        num_mel_bins=8,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=32,
        d_model=16,
        output_dim=TEXT_HIDDEN,
        max_source_positions=64,
        n_window=8,
    )
    return Qwen2_5OmniThinkerConfig(
        audio_config=audio,
        vision_config=vision(**TOWER, window_size=112, fullatt_block_indexes=[1]),
        text_config=_text_config(tokenizer),
        image_token_index=ids(NAMED["image_token"]),
        video_token_index=ids(NAMED["video_token"]),
        audio_token_index=ids(NAMED["audio_token"]),
        audio_start_token_id=ids(NAMED["audio_bos_token"]),
        audio_end_token_id=ids(NAMED["audio_eos_token"]),
        vision_start_token_id=ids(NAMED["vision_bos_token"]),
        vision_end_token_id=ids(NAMED["vision_eos_token"]),
        user_token_id=ids("<|im_start|>"),
    )


def _prepare() -> None:
    from rag.models.families import named

    named("colqwen2_5_omni").prepare()  # colpali-engine's class on transformers 5


_build = builder(
    "colqwen2_5_omni", 50, "ColQwen2_5Omni", "ColQwen2_5OmniProcessor", _processor, thinker_config
)


def build_colqwen2_5_omni(out_root: Path) -> Path:
    """A tiny ``ColQwen2_5Omni`` and its ``ColQwen2_5OmniProcessor``."""
    _prepare()
    return _build(out_root)


def colqwen2_5_omni_at_scale(layers: int | None = None):
    """A ``ColQwen2_5Omni`` at Qwen2.5-Omni-3B's thinker size (the base of
    vidore/colqwen-omni-v0.1), from its published config: text 2048 wide, 36 layers, 16 heads
    with 2 KV heads, MLP 11008; Qwen2.5-VL's vision tower (1280 wide, 32 blocks, 16 heads, MLP
    3420, full attention every 8th block); a Whisper-large audio encoder (1280 wide, 32
    layers), idle for pages. ``layers`` overrides every layer count; pages up to 768 cells."""
    from colpali_engine.models import ColQwen2_5Omni, ColQwen2_5OmniProcessor
    from transformers import Qwen2_5OmniThinkerConfig

    _prepare()
    made = _processor(ColQwen2_5OmniProcessor)
    made.image_processor.max_pixels = 768 * (PATCH_SIZE * MERGE_SIZE) ** 2
    depth = layers or 32
    text = dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=layers or 36)
    text |= dict(num_attention_heads=16, num_key_value_heads=2)
    settings = scaled(
        thinker_config(made.tokenizer),
        text_config=text,
        vision_config=dict(
            depth=depth,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=2048,
            fullatt_block_indexes=[i for i in range(7, depth, 8)] or [0],
        ),
        audio_config=dict(
            d_model=1280,
            encoder_layers=layers or 32,
            encoder_attention_heads=20,
            encoder_ffn_dim=5120,
            num_mel_bins=128,
            output_dim=2048,
            max_source_positions=1500,
            n_window=100,
        ),
    )
    rope = settings["text_config"]["rope_parameters"]
    settings["text_config"]["rope_parameters"] = {**rope, "mrope_section": [16, 24, 24]}
    keep = {key: settings[key] for key in settings if key.endswith(("_id", "_index"))}
    towers = {key: settings[key] for key in ("audio_config", "vision_config", "text_config")}
    model = ColQwen2_5Omni(Qwen2_5OmniThinkerConfig(**towers, **keep)).eval()
    randomize_bias(model.custom_text_proj)
    return model, made
