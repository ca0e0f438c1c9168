"""The answerer's encoded page images, kept between questions.

Encoding a page image (the vision tower and its projection) is most of what an answer costs
before its first word on a CPU. A follow-up over the same pages, or a page retrieved again by
another question, gets the page's encoding from here instead: each page is encoded alone, once
per image and pixel budget, and the encodings of a question's pages are handed to
``generate`` together as transformers' ``mm_encoder_outputs``, the form its own
``generate`` passes them to ``forward`` in after encoding the pixels itself.

The cache belongs to one loaded model (``Answerer``) and is bounded in bytes, least recently
used first out (RAG_ANSWER_CACHE_MB; 0 turns it off).
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections import OrderedDict
from collections.abc import Hashable

import torch
from PIL import Image

# What a page's encoding keeps: the projected image tokens, and Qwen3-VL's DeepStack features
# (one tensor per injected layer). Everything else the vision tower returns is dropped.
KEPT = ("pooler_output", "deepstack_features")


class PageCache:
    """Page encodings by key (``image_key``), at most ``max_bytes`` of tensors in all; ``hits``
    and ``misses`` count the lookups."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._bytes = 0
        self._entries: OrderedDict[Hashable, dict] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> dict | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Hashable, entry: dict) -> None:
        size = entry_bytes(entry)
        with self._lock:
            if key in self._entries or size > self.max_bytes:
                return
            self._entries[key] = entry
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= entry_bytes(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def supported(model) -> bool:
    """Whether ``model``'s forward takes encoded images (``mm_encoder_outputs``)."""
    return "mm_encoder_outputs" in inspect.signature(model.forward).parameters


def image_key(image: Image.Image, *budget: object) -> tuple:
    """A page image's identity: a digest of its pixels, its size and mode, and the budget it
    is encoded within."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()
    return (digest, image.size, image.mode, *budget)


def encoder_keys(model, inputs) -> list[str]:
    """The processor outputs the model's image encoder reads (``pixel_values`` and the grid or
    mask beside it), as transformers' ``generate`` selects them."""
    parameters = inspect.signature(type(model.base_model).get_image_features).parameters
    return [name for name in parameters if name not in ("self", "kwargs") and name in inputs]


def pixel_keys(model, inputs) -> list[str]:
    """Of those, the pixels themselves: what encoded pages replace (a page's grid stays, for
    the positions of its tokens)."""
    return [name for name in encoder_keys(model, inputs) if name.startswith("pixel_")]


def encode(model, inputs) -> dict:
    """One page's encoding from the processor's ``inputs`` for that page alone."""
    encoder_inputs = {name: inputs[name] for name in encoder_keys(model, inputs)}
    output = model.base_model.get_image_features(**encoder_inputs, return_dict=True)
    entry = {name: _detached(getattr(output, name)) for name in KEPT if _has(output, name)}
    return {"class": type(output), **entry}


def merged(entries: list[dict]):
    """The pages' encodings as one output of the model's image encoder, pages in order, as
    its ``forward`` reads it (``joined``)."""
    fields = {
        name: joined([entry[name] for entry in entries]) for name in KEPT if name in entries[0]
    }
    return entries[0]["class"](**fields)


def joined(values: list):
    """One field of several pages' encodings joined: tensors of whole images concatenated
    (Gemma 3, PaliGemma), per-image pieces put in one sequence (Qwen, Idefics3), and a list of
    such per layer (Qwen3-VL's DeepStack features) joined layer by layer."""
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(values)
    if isinstance(first[0], torch.Tensor):
        return tuple(piece for value in values for piece in value)
    return [joined(list(layer)) for layer in zip(*values, strict=True)]


def entry_bytes(entry: dict) -> int:
    tensors = [t for name in KEPT for t in _tensors(entry.get(name, ()))]
    return sum(t.numel() * t.element_size() for t in tensors)


def _has(output, name: str) -> bool:
    return getattr(output, name, None) is not None


def _detached(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    return type(value)(_detached(item) for item in value)


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    return [tensor for item in value for tensor in _tensors(item)]
