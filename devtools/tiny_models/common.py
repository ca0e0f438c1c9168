"""Helpers shared by the tiny-model builders."""

from __future__ import annotations

from pathlib import Path

import torch


def seed(value: int = 0) -> None:
    """Seed torch so that a rebuilt tiny checkpoint has the same weights."""
    torch.manual_seed(value)


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
