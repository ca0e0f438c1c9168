"""A tiny ColModernVBert: ModernVBert (a ModernBERT encoder reading SigLIP image tokens,
pixel-shuffled by 2) with a 128-d projection, behind colpali-engine's Idefics3-style processor,
so pages are tiled exactly as the tiny ColIdefics3's (``devtools.tiny_models.idefics``): 64-px
tiles of 8 x 8 patches, 16 ``<image>`` tokens each, plus a global tile."""

from __future__ import annotations

from pathlib import Path

from devtools.tiny_models.common import is_built, randomize_bias, save, seed
from devtools.tiny_models.idefics import (
    CHAT_TEMPLATE,
    IMAGE_SEQ_LEN,
    PATCH_SIZE,
    SCALE_FACTOR,
    TEXT_HEADS,
    TEXT_HIDDEN,
    TILE_SIZE,
    VISION_HIDDEN,
    _image_processor,
    build_tokenizer,
)

BEGIN = "<|begin_of_text|>"  # the processor's page prompt starts with it


def modernvbert_config(tokenizer):
    from transformers import ModernVBertConfig

    ids = tokenizer.convert_tokens_to_ids
    pad, begin, end = ids("<|im_end|>"), ids(BEGIN), ids("<end_of_utterance>")
    text = dict(
        model_type="modernbert",
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=TEXT_HEADS,
        max_position_embeddings=8192,
        global_attn_every_n_layers=2,
        local_attention=64,
        pad_token_id=pad,
        bos_token_id=begin,
        eos_token_id=end,
        cls_token_id=begin,
        sep_token_id=end,
    )
    vision = dict(
        model_type="siglip_vision_model",
        hidden_size=VISION_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=TILE_SIZE,
        patch_size=PATCH_SIZE,
    )
    return ModernVBertConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<image>"),
        pixel_shuffle_factor=SCALE_FACTOR,
    )


def build_colmodernvbert(out_root: Path) -> Path:
    """A tiny ``ColModernVBert`` and its ``ColModernVBertProcessor``."""
    folder = Path(out_root) / "colmodernvbert"
    if is_built(folder):
        return folder
    from colpali_engine.models import ColModernVBert, ColModernVBertProcessor
    from tokenizers import AddedToken

    seed(40)
    tokenizer = build_tokenizer()
    tokenizer.add_tokens([AddedToken(BEGIN, special=True, normalized=False)])
    processor = ColModernVBertProcessor(
        image_processor=_image_processor(),
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    model = ColModernVBert(modernvbert_config(processor.tokenizer)).eval()
    randomize_bias(model.custom_text_proj)
    return save(folder, processor, model)


def colmodernvbert_at_scale(layers: int | None = None):
    """A ``ColModernVBert`` at ModernVBERT's size (250M: a ModernBERT encoder 768 wide with 22
    layers, 12 heads, MLP 1152; a SigLIP base vision tower, 768 wide, 12 layers, on 512-px tiles
    of 16-px patches shuffled by 4 into 64 tokens), ``layers`` overriding both layer counts; in
    memory with its processor (tiles of 512 px, pages up to 4 x 4 tiles)."""
    from colpali_engine.models import ColModernVBert, ColModernVBertProcessor
    from tokenizers import AddedToken
    from transformers import Idefics3ImageProcessor

    tokenizer = build_tokenizer()
    tokenizer.add_tokens([AddedToken(BEGIN, special=True, normalized=False)])
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=True,
        size={"longest_edge": 4 * 512},
        max_image_size={"longest_edge": 512},
    )
    processor = ColModernVBertProcessor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=64
    )
    config = modernvbert_config(processor.tokenizer).to_dict()
    text = config["text_config"] | dict(
        hidden_size=768,
        intermediate_size=1152,
        num_hidden_layers=layers or 22,
        num_attention_heads=12,
        global_attn_every_n_layers=3,
        local_attention=128,
    )
    text.pop("layer_types", None)  # derived again from the layer count
    vision = config["vision_config"] | dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=layers or 12,
        num_attention_heads=12,
        image_size=512,
        patch_size=16,
    )
    from transformers import ModernVBertConfig

    model_config = ModernVBertConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=config["image_token_id"],
        pixel_shuffle_factor=4,
    )
    model = ColModernVBert(model_config).eval()
    randomize_bias(model.custom_text_proj)
    return model, processor
