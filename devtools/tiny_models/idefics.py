"""Tiny Idefics3-family checkpoints: ColIdefics3 (ColSmol) retriever, Idefics3 (SmolVLM) answerer.

Real architectures (SigLIP-style Idefics3 vision tower, pixel-shuffle connector, Llama text model),
random seeded weights, a small GPT-2 byte-level BPE tokenizer carrying the real SmolVLM special
tokens (``<fake_token_around_image>``, ``<image>``, ``<end_of_utterance>``, ``<global-img>``,
``<row_i_col_j>``) and the real SmolVLM chat template. Everything is built offline in seconds.

Geometry (as the real models, scaled down): a page is resized so its longest edge is 192 px,
stretched up to multiples of 64 px and cut into 64 x 64 tiles (1..3 x 1..3), plus one global
64 x 64 tile. Each tile is 8 x 8 vision patches of 8 px, pixel-shuffled by 2 into a 4 x 4 square of
16 ``<image>`` tokens. So an A4 page gives 3 x 3 tiles (12 x 12 local tokens), a wide 3:1 page
1 x 3 tiles and a tall 1:3 page 3 x 1 tiles.
"""

from __future__ import annotations

from functools import partial

import torch

from devtools.tiny_models.common import (
    SIGLIP,
    TEXT,
    builder,
    byte_level_bpe,
    generation_config,
    load,
    randomize_bias,
    scaled,
)

TILE_SIZE = 64  # image processor max_image_size["longest_edge"] == vision_config.image_size
PAGE_LONGEST_EDGE = 3 * TILE_SIZE  # image processor size["longest_edge"]: at most 3 x 3 tiles
PATCH_SIZE = 8
SCALE_FACTOR = 2
TOKENS_PER_TILE_SIDE = TILE_SIZE // PATCH_SIZE // SCALE_FACTOR  # 4
IMAGE_SEQ_LEN = TOKENS_PER_TILE_SIDE**2  # 16 <image> tokens per tile

# Start of the real SmolVLM vocabulary (ids 0, 1, 2 there).
LEADING_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Added at the end of the real vocabulary; the first three are the processor's special tokens.
IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)
]

# The real SmolVLM-Instruct chat template (plus a branch for plain-string content).
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}"
    "{% else %}{% if message['content'][0]['type'] == 'image' %}{{ ':' }}"
    "{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Whole-word pieces: each gets a "Ġ"-prefixed (leading space) chain of merges built left to right.
_WORD_TEXT = """
a an the of in on at to for from by with and or not no yes is are was were be been has have
had do does did it its this that these those there here what which who when where why how
much many more most less all any each some other than then so as if but about into over under
per after before up down out new old first last next total page pages figure table chart report
annual year years quarter month revenue revenues income profit loss sales cost price growth
rate share market company business net gross operating margin cash flow assets debt tax value
number percent amount increase decrease million billion document section summary results data
source note answer question image text title describe can could will would should may one two
three i you we they my your our user assistant pdf p
"""
WORDS = _WORD_TEXT.split()


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE as SmolVLM's: specials, 256 byte symbols, merged word pieces, image tokens."""
    return byte_level_bpe(WORDS, before=LEADING_SPECIALS, after=IMAGE_TOKENS)


def build_tokenizer():
    """A tiny ``GPT2Tokenizer`` with SmolVLM's special tokens and chat template."""
    from tokenizers import AddedToken
    from transformers import GPT2Tokenizer

    vocab, merges = _vocab_and_merges()
    tokenizer = GPT2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<|endoftext|>",
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|im_end|>",
        add_prefix_space=False,
        model_max_length=8192,
        padding_side="left",  # ColIdefics3Processor forces it anyway; suits batched generation too
    )
    # Never split; special (skipped on decode) as in the real tokenizer. The processor then makes
    # the first three its ``extra_special_tokens``.
    tokenizer.add_tokens(
        [AddedToken(token, special=True, normalized=False) for token in IMAGE_TOKENS],
        special_tokens=True,
    )
    tokenizer.add_special_tokens({"extra_special_tokens": IMAGE_TOKENS[:3]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _processor(
    processor_class,
    tile: int = TILE_SIZE,
    tiles: int = PAGE_LONGEST_EDGE // TILE_SIZE,
    image_seq_len: int = IMAGE_SEQ_LEN,
    *,
    image_processor: str = "Idefics3ImageProcessor",
    video_processor: str | None = None,
    tokenizer=None,
    chat_template: str | None = CHAT_TEMPLATE,
):
    """An Idefics3-style processor: pages in ``tile``-px tiles, up to ``tiles`` x ``tiles`` plus
    a global one, ``image_seq_len`` tokens a tile; SmolVLM's tokenizer unless ``tokenizer``."""
    sizes = dict(size={"longest_edge": tiles * tile}, max_image_size={"longest_edge": tile})
    video = {"video_processor": load(video_processor)(**sizes)} if video_processor else {}
    return processor_class(
        image_processor=load(image_processor)(do_image_splitting=True, **sizes),
        tokenizer=tokenizer or build_tokenizer(),
        **video,
        image_seq_len=image_seq_len,
        chat_template=chat_template,
    )


def _config(tokenizer, tie_word_embeddings: bool, config_class: str = "Idefics3Config"):
    ids = tokenizer.convert_tokens_to_ids
    text = TEXT | dict(
        model_type="llama",
        vocab_size=len(tokenizer),
        num_key_value_heads=1,
        head_dim=TEXT["hidden_size"] // TEXT["num_attention_heads"],
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
        bos_token_id=ids("<|im_start|>"),
        eos_token_id=ids("<end_of_utterance>"),
        pad_token_id=ids("<|im_end|>"),
        tie_word_embeddings=tie_word_embeddings,
    )
    return load(config_class)(
        text_config=text,
        vision_config=SIGLIP | dict(num_channels=3, image_size=TILE_SIZE, patch_size=PATCH_SIZE),
        scale_factor=SCALE_FACTOR,
        image_token_id=ids("<image>"),
        pad_token_id=ids("<|im_end|>"),
        tie_word_embeddings=tie_word_embeddings,
    )


def _answer_in_words(model, tokenizer) -> None:
    """Untied head, unit-scale token embeddings: with the default 0.02-scale ones the random
    model greedily repeats one word forever; with these it writes varied words (and some stray
    bytes)."""
    ids = tokenizer.convert_tokens_to_ids
    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight
        embeddings.normal_(0.0, 1.0)
        embeddings[ids("<|im_end|>")] = 0.0  # the padding row stays zero, as initialised
    model.generation_config = generation_config(
        ids("<|im_start|>"), [ids("<end_of_utterance>"), ids("<|im_end|>")], ids("<|im_end|>")
    )


untied = partial(_config, tie_word_embeddings=False)
# ColIdefics3 (ColSmol): an Idefics3 backbone + 128-d projection, named ``linear`` there.
build_colidefics3 = builder(
    "colidefics3",
    20,
    "ColIdefics3",
    "ColIdefics3Processor",
    _processor,
    untied,
    projection="linear",
)
build_idefics3 = builder(
    "idefics3",
    21,
    "Idefics3ForConditionalGeneration",
    "Idefics3Processor",
    _processor,
    untied,
    _answer_in_words,
)
# SmolVLM2: SmolVLM's image and video processors (the same tiling as Idefics3).
build_smolvlm2 = builder(
    "smolvlm2",
    22,
    "SmolVLMForConditionalGeneration",
    "SmolVLMProcessor",
    partial(
        _processor, image_processor="SmolVLMImageProcessor", video_processor="SmolVLMVideoProcessor"
    ),
    partial(untied, config_class="SmolVLMConfig"),
    _answer_in_words,
)


# -- at the published sizes (benchmarks.latency) ---------------------------------------------

# SmolVLM-256M-Instruct (the base of vidore/colSmol-256M) and SmolVLM-500M-Instruct (of
# colSmol-500M), from their published configs: a Llama text model (SmolLM2-135M / -360M widths,
# 49,280-token vocabulary) reading a SigLIP base vision tower (768 wide, 12 layers, 16-px patches
# on 512-px tiles) through a pixel shuffle by 4: 64 tokens a tile, pages up to 4 x 4 tiles.
AT_SCALE_TEXT = {
    "256m": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
    ),
    "500m": dict(
        hidden_size=960,
        intermediate_size=2560,
        num_hidden_layers=32,
        num_attention_heads=15,
        num_key_value_heads=5,
    ),
}
AT_SCALE_VISION = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    image_size=512,
    patch_size=16,
)
AT_SCALE_VOCAB = 49280
AT_SCALE_TILE, AT_SCALE_TILES = 512, 4


def _at_scale_processor(processor_class):
    return _processor(processor_class, AT_SCALE_TILE, AT_SCALE_TILES, 64)


def _at_scale_config(tokenizer, size: str, layers: int | None):
    from transformers import Idefics3Config

    text = AT_SCALE_TEXT[size] | {"head_dim": 64, "vocab_size": AT_SCALE_VOCAB}
    config = scaled(untied(tokenizer), layers, text_config=text, vision_config=AT_SCALE_VISION)
    return Idefics3Config(
        text_config=config["text_config"],
        vision_config=config["vision_config"],
        scale_factor=4,
        image_token_id=config["image_token_id"],
        pad_token_id=config["text_config"]["pad_token_id"],
        tie_word_embeddings=False,  # an untied head: 256M parameters in all, as published
    )


def smolvlm_at_scale(size: str = "256m", layers: int | None = None):
    """An ``Idefics3ForConditionalGeneration`` answerer at SmolVLM-``size``'s published size
    (``layers`` overriding both layer counts, for a quick check), in memory with its processor:
    (model, processor). Random weights, on the default device and dtype; only the tokenizer is
    the test kit's (the embedding table keeps the real vocabulary's size)."""
    from transformers import Idefics3ForConditionalGeneration, Idefics3Processor

    processor = _at_scale_processor(Idefics3Processor)
    config = _at_scale_config(processor.tokenizer, size, layers)
    return Idefics3ForConditionalGeneration(config).eval(), processor


def colidefics3_at_scale(layers: int | None = None, size: str = "256m"):
    """A ``ColIdefics3`` at colSmol-``size``'s published size (its SmolVLM base and a 128-d
    projection), in memory with its processor: (model, processor)."""
    from colpali_engine.models import ColIdefics3, ColIdefics3Processor

    processor = _at_scale_processor(ColIdefics3Processor)
    config = _at_scale_config(processor.tokenizer, size, layers)
    model = ColIdefics3(config).eval()
    randomize_bias(model.linear)
    return model, processor
