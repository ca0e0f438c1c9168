"""Tiny Qwen-VL checkpoints: ColQwen2 / ColQwen2.5 retrievers, Qwen2-VL / Qwen2.5-VL answerers.

Real architectures (Qwen2-VL / Qwen2.5-VL vision towers with 14 px patches and 2 x 2 patch merging,
M-RoPE text models), random seeded weights, a small GPT-2 byte-level BPE tokenizer carrying the real
Qwen special tokens and the real Qwen2-VL chat template. Everything is built offline in seconds.
"""

from __future__ import annotations

from pathlib import Path

from devtools.tiny_models.common import byte_level_bpe, is_built, randomize_bias, save, seed

PATCH_SIZE = 14  # as the real models: one merged visual token covers 28 x 28 pixels
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
TOKEN_PIXELS = (PATCH_SIZE * MERGE_SIZE) ** 2

# ColQwen page budget: 80 merged tokens -> an A4 page becomes a 7 x 10 grid (portrait).
RETRIEVER_MAX_VISUAL_TOKENS = 80
# Answerer image budget (per image): between 4 and 64 merged tokens.
GENERATOR_MIN_PIXELS = 4 * TOKEN_PIXELS
GENERATOR_MAX_PIXELS = 64 * TOKEN_PIXELS

TEXT_HIDDEN = 64
TEXT_HEADS = 2
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
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]
# Not special in the real tokenizer (plain added tokens there too, but decoded as text).
NON_SPECIAL = {
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
}

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

# Whole-word pieces: each gets a "Ġ"-prefixed (leading space) chain of merges built left to right.
_WORDS_TEXT = """
a an the of in on at to for from by with and or not no yes is are was were be been has have
had do does did it its this that these those there here what which who whom whose when where
why how much many more most less all any each some other than then so as if but about into
over under per between after before during up down out new old first last next total page
pages figure table chart graph report annual year years quarter month date time revenue
revenues income profit loss sales cost costs price growth rate share shares market company
companies business net gross operating margin cash flow assets liabilities equity debt tax
value number percent amount average increase decrease million billion thousand document
section summary results data source note notes answer question image text title describe
can could will would should may might one two three four five six seven eight nine ten
i you we they he she my your our their me us them user assistant system helpful
"""
WORDS = _WORDS_TEXT.split()


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE as Qwen's: 256 byte symbols first, then merged word pieces, then specials."""
    return byte_level_bpe(WORDS, after=SPECIAL_TOKENS)


def build_tokenizer():
    """A tiny ``Qwen2Tokenizer`` with the real special tokens and chat template."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab, merges = _vocab_and_merges()
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[
            token
            for token in SPECIAL_TOKENS
            if token not in NON_SPECIAL and token not in ("<|endoftext|>", "<|im_end|>")
        ],
        errors="replace",
        model_max_length=32768,
        split_special_tokens=False,
    )
    # The real tokenizer also has these as added (never split) but non-special tokens.
    tokenizer.add_tokens(
        [
            AddedToken(token, special=False, normalized=False)
            for token in SPECIAL_TOKENS
            if token in NON_SPECIAL
        ]
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _image_processor(min_pixels: int, max_pixels: int):
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor(
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        patch_size=PATCH_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        merge_size=MERGE_SIZE,
    )


def _video_processor(min_pixels: int, max_pixels: int):
    from transformers import Qwen2VLVideoProcessor

    return Qwen2VLVideoProcessor(
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        patch_size=PATCH_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        merge_size=MERGE_SIZE,
    )


def _processor(processor_class, min_pixels: int, max_pixels: int):
    return processor_class(
        image_processor=_image_processor(min_pixels, max_pixels),
        tokenizer=build_tokenizer(),
        video_processor=_video_processor(min_pixels, max_pixels),
        chat_template=CHAT_TEMPLATE,
    )


def _retriever_processor(processor_class):
    return _processor(processor_class, TOKEN_PIXELS * 4, RETRIEVER_MAX_VISUAL_TOKENS * TOKEN_PIXELS)


def _generator_processor(processor_class):
    return _processor(processor_class, GENERATOR_MIN_PIXELS, GENERATOR_MAX_PIXELS)


def _text_config(tokenizer) -> dict:
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=TEXT_HEADS,
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


def _qwen2_vl_config(tokenizer, tie_word_embeddings: bool = True):
    from transformers import Qwen2VLConfig

    vision = dict(
        depth=2,
        embed_dim=32,
        hidden_size=TEXT_HIDDEN,  # merger output = text hidden size
        mlp_ratio=2,
        num_heads=2,
        in_channels=3,
        patch_size=PATCH_SIZE,
        spatial_merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
    )
    return Qwen2VLConfig(
        text_config=_text_config(tokenizer),
        vision_config=vision,
        tie_word_embeddings=tie_word_embeddings,
        **_token_ids(tokenizer),
    )


def _qwen2_5_vl_config(tokenizer, tie_word_embeddings: bool = True):
    from transformers import Qwen2_5_VLConfig

    vision = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        hidden_act="silu",
        num_heads=2,
        in_channels=3,
        patch_size=PATCH_SIZE,
        spatial_merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        window_size=112,  # 8 x 8 patch windows, as the real model
        fullatt_block_indexes=[1],  # block 0 windowed, block 1 full attention
        out_hidden_size=TEXT_HIDDEN,
        tokens_per_second=2,
    )
    return Qwen2_5_VLConfig(
        text_config=_text_config(tokenizer),
        vision_config=vision,
        tie_word_embeddings=tie_word_embeddings,
        **_token_ids(tokenizer),
    )


def _build_retriever(
    folder: Path, model_class, processor_class, config_fn, seed_value: int
) -> Path:
    seed(seed_value)
    processor = _retriever_processor(processor_class)
    model = model_class(config_fn(processor.tokenizer)).eval()
    randomize_bias(model.custom_text_proj)
    return save(folder, processor, model)


def _build_generator(
    folder: Path, model_class, processor_class, config_fn, seed_value: int
) -> Path:
    seed(seed_value)
    processor = _generator_processor(processor_class)
    tokenizer = processor.tokenizer
    # Untied head (as Qwen2-VL-7B): a tied random head just echoes the last prompt token ("\n")
    # forever, an untied one greedily writes varied words.
    model = model_class(config_fn(tokenizer, tie_word_embeddings=False)).eval()
    model.generation_config = generation_config(tokenizer)
    return save(folder, processor, model)


def generation_config(tokenizer):
    """Greedy decoding that stops at the end of the assistant's turn, as Qwen's answerers do."""
    from transformers import GenerationConfig

    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return GenerationConfig(
        bos_token_id=endoftext,
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), endoftext],
        pad_token_id=endoftext,
        max_new_tokens=16,
    )


def build_colqwen2(out_root: Path) -> Path:
    """A tiny ``ColQwen2`` (Qwen2-VL backbone + 128-d projection) and its ``ColQwen2Processor``."""
    folder = Path(out_root) / "colqwen2"
    if is_built(folder):
        return folder
    from colpali_engine.models import ColQwen2, ColQwen2Processor

    return _build_retriever(folder, ColQwen2, ColQwen2Processor, _qwen2_vl_config, 10)


def build_colqwen2_5(out_root: Path) -> Path:
    """A tiny ``ColQwen2_5`` (Qwen2.5-VL backbone + 128-d projection) + ``ColQwen2_5_Processor``."""
    folder = Path(out_root) / "colqwen2_5"
    if is_built(folder):
        return folder
    from colpali_engine.models import ColQwen2_5, ColQwen2_5_Processor

    return _build_retriever(folder, ColQwen2_5, ColQwen2_5_Processor, _qwen2_5_vl_config, 11)


def build_qwen2_vl(out_root: Path) -> Path:
    """A tiny ``Qwen2VLForConditionalGeneration`` answerer + ``Qwen2VLProcessor``."""
    folder = Path(out_root) / "qwen2_vl"
    if is_built(folder):
        return folder
    from transformers import Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    return _build_generator(
        folder, Qwen2VLForConditionalGeneration, Qwen2VLProcessor, _qwen2_vl_config, 12
    )


def build_qwen2_5_vl(out_root: Path) -> Path:
    """A tiny ``Qwen2_5_VLForConditionalGeneration`` answerer + ``Qwen2_5_VLProcessor``."""
    folder = Path(out_root) / "qwen2_5_vl"
    if is_built(folder):
        return folder
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    return _build_generator(
        folder, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, _qwen2_5_vl_config, 13
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

    processor = _processor(ColQwen2Processor, TOKEN_PIXELS * 4, visual_tokens * TOKEN_PIXELS)
    config = _config_at_scale(processor.tokenizer, text_layers, vision_depth)
    model = ColQwen2(config).eval()
    randomize_bias(model.custom_text_proj)
    return model, processor


def qwen2_vl_at_scale(
    text_layers: int, vision_depth: int, visual_tokens: int = 256, vocab_size: int | None = None
):
    """A ``Qwen2VLForConditionalGeneration`` answerer at Qwen2-VL-2B's widths with
    ``text_layers`` + ``vision_depth`` layers, in memory with its processor (as
    ``colqwen2_at_scale``; untied head, random weights; ``vocab_size`` sizes the embedding table
    and the head, e.g. the real 151,936 for timing decoding): (model, processor)."""
    from transformers import Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    processor = _processor(Qwen2VLProcessor, TOKEN_PIXELS * 4, visual_tokens * TOKEN_PIXELS)
    config = _config_at_scale(
        processor.tokenizer, text_layers, vision_depth, tie_word_embeddings=False
    )
    if vocab_size:
        config.text_config.vocab_size = config.vocab_size = vocab_size
    return Qwen2VLForConditionalGeneration(config).eval(), processor


def _config_at_scale(tokenizer, text_layers: int, vision_depth: int, **options):
    from transformers import Qwen2VLConfig

    text = _text_config(tokenizer) | MID_TEXT | {"num_hidden_layers": text_layers}
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_section": MID_MROPE_SECTION}
    vision = MID_VISION | dict(
        depth=vision_depth,
        in_channels=3,
        patch_size=PATCH_SIZE,
        spatial_merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
    )
    tokens = _token_ids(tokenizer)
    return Qwen2VLConfig(text_config=text, vision_config=vision, **tokens, **options)


def build_colqwen2_mid(
    out_root: Path, text_layers: int = 2, vision_depth: int = 2, visual_tokens: int = 256
) -> Path:
    """``colqwen2_at_scale`` with few layers (2 + 2: the CPU benchmark's mid-size model), saved."""
    folder = Path(out_root) / f"colqwen2_mid-{text_layers}x{vision_depth}-{visual_tokens}"
    if is_built(folder):
        return folder
    seed(12)
    model, processor = colqwen2_at_scale(text_layers, vision_depth, visual_tokens)
    return save(folder, processor, model)
