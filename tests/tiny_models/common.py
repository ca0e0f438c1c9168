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
