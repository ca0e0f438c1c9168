"""What every tiny-model builder shares: the one way a checkpoint is made and saved, the tiny
sizes, the words the tokenizers know whole, byte-level BPE."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import torch

# The tiny towers. Text: 64 wide, 2 heads of 32 (callers add the KV heads their config knows).
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
# SigLIP-style vision (PaliGemma, Gemma 3, Idefics3, ModernVBert): 32 wide, 2 layers of 2 heads.
SIGLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)

# Words of questions about reports, each made one token after a space by the tiny tokenizers, so
# that a question is a few tokens and a random answerer writes words; the order fixes the ids.
_QUESTION_TEXT = """
a an the of in on at to for from by with and or not no yes is are was were be been has have
had do does did it its this that these those there here what which who whom whose when where
why how much many more most less all any each some other than then so as if but about into
over under per between after before during up down out new old first last next total page
pages figure table chart graph report annual year years quarter month date time revenue
revenues income profit loss sales cost costs price growth rate share shares market company
companies business net gross operating margin cash flow assets liabilities equity debt tax
value number percent amount average increase decrease million billion thousand document
section summary results data source note notes answer question image text title describe
"""
_TALK_TEXT = """
can could will would should may might one two three four five six seven eight nine ten
i you we they he she my your our their me us them
"""
QUESTION_WORDS, TALK_WORDS = _QUESTION_TEXT.split(), _TALK_TEXT.split()


def seed(value: int = 0) -> None:
    """Seed torch so that a rebuilt tiny checkpoint has the same weights."""
    torch.manual_seed(value)


def random_lora(base, base_folder: Path, targets, task_type: str, alpha: int):
    """``base`` wrapped in a rank-4 LoRA adapter over ``targets`` whose A and B are both random
    (PEFT's default zero B would change nothing), naming ``base_folder`` as its base."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=4,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=targets,
        init_lora_weights=False,
        task_type=task_type,
        base_model_name_or_path=str(base_folder),
    )
    adapter = get_peft_model(base, config)
    adapter.peft_config["default"].base_model_name_or_path = str(base_folder)
    return adapter


def is_built(folder: Path) -> bool:
    """A folder counts as built once its config is written (save_pretrained writes it last-ish)."""
    return (folder / "config.json").exists() or (folder / "adapter_config.json").exists()


def save(folder: Path, processor, model) -> Path:
    """Write a tiny checkpoint as real ones are: processor and model, with save_pretrained."""
    folder.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def randomize_bias(linear: torch.nn.Linear, scale: float = 0.1) -> None:
    """Random projection bias: with a zero bias, padded positions embed to 0/0 = NaN."""
    with torch.no_grad():
        linear.bias.uniform_(-scale, scale)


def load(name: str):
    """A class by name, imported only when a family is built: ``Col*`` from colpali-engine,
    another bare name from transformers, else a dotted ``"package.module.Name"``."""
    if "." not in name:
        name = f"colpali_engine.models.{name}" if name.startswith("Col") else f"transformers.{name}"
    module, _, name = name.rpartition(".")
    return getattr(importlib.import_module(module), name)


def builder(
    family: str,
    seed_value: int,
    model_class: str,
    processor_class: str,
    processor: Callable,
    config: Callable,
    answerer: Callable | None = None,
    projection: str = "custom_text_proj",
) -> Callable[[Path], Path]:
    """``build_<family>(out_root) -> out_root/<family>``, the one way a tiny checkpoint is made
    (reused if built): seeded, ``processor(processor_class)`` and ``model_class`` on
    ``config(tokenizer)``; then an ``answerer(model, tokenizer)`` is made to answer in words, or
    a retriever's ``projection`` gets a random bias (``randomize_bias``); saved. The classes
    load before seeding, so that what an import does cannot move the weights."""

    def build(out_root: Path) -> Path:
        folder = Path(out_root) / family
        if is_built(folder):
            return folder
        model_type, processor_type = load(model_class), load(processor_class)
        seed(seed_value)
        made = processor(processor_type)
        model = model_type(config(made.tokenizer)).eval()
        if answerer:
            answerer(model, made.tokenizer)
        else:
            randomize_bias(getattr(model, projection))
        return save(folder, made, model)

    build.__name__ = build.__qualname__ = f"build_{family}"
    build.__doc__ = f"The tiny ``{model_class}`` checkpoint (see ``builder``)."
    return build


def generation_config(bos_token_id, eos_token_id, pad_token_id):
    """An answerer's greedy decoding, kept short: a tiny model's answer is for plumbing."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        max_new_tokens=16,
    )


def scaled(config, layers: int | None = None, **sizes: dict) -> dict:
    """A tiny ``config``'s settings, each sub-config ``name`` updated by ``sizes[name]`` and, when
    given, ``layers`` deep. Its ``layer_types`` is dropped: the new layer count derives it again."""
    settings = config.to_dict()
    for name, overrides in sizes.items():
        settings[name] = settings[name] | overrides
        settings[name].pop("layer_types", None)
        for key in ("num_hidden_layers", "depth", "encoder_layers"):
            if layers and key in settings[name]:
                settings[name][key] = layers
    return settings


def byte_level_alphabet() -> list[str]:
    """GPT-2's 256 printable stand-ins for raw bytes (the base vocab of byte-level BPE)."""
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def byte_level_bpe(
    words: list[str], before: list[str] = (), after: list[str] = ()
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A GPT-2-style byte-level BPE vocab and merges: ``before`` tokens, the 256 byte symbols,
    then each word (and its capitalised form) merged letter by letter after a "Ġ" (space), so
    that " revenue" is one token; then the ``after`` tokens."""
    vocab: dict[str, int] = {}
    for token in [*before, *byte_level_alphabet()]:
        vocab.setdefault(token, len(vocab))
    space = "\u0120"  # "Ġ": the byte-level stand-in for " "
    merges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for word in dict.fromkeys(words + [word.capitalize() for word in words]):
        piece = space
        for char in word:
            pair = (piece, char)
            piece += char
            if pair not in seen:
                seen.add(pair)
                merges.append(pair)
            vocab.setdefault(piece, len(vocab))
    for token in after:
        vocab.setdefault(token, len(vocab))
    return vocab, merges
