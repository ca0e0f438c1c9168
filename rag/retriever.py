"""The page/query embedder: a thin wrapper over colpali-engine's ColPali-family models.

``embed_pages(images) -> list[Tensor(n_i, dim)]`` and ``embed_query(text) -> Tensor(q, dim)``.
Batching, ``torch.inference_mode()``, device and dtype moves live here and nowhere else.
Padding is removed from every returned embedding (via the attention mask), so a page embedded
in a batch equals the same page embedded alone, and its rows line up with the tokens the
processor produces for that page alone (which is what heatmap geometry relies on).
"""

from __future__ import annotations

import importlib
import logging
import math
from dataclasses import dataclass

import torch
from PIL import Image

from rag.batching import auto_batch_size, probe_page
from rag.config import Settings
from rag.errors import ModelNotFoundError
from rag.models import (
    attention_options,
    locate,
    resolve_device,
    resolve_dtype,
    retriever_family,
)
from rag.torch_compat import ensure_torchvision

logger = logging.getLogger(__name__)

# family -> (model class, processor class) in colpali_engine.models
CLASSES = {
    "colpali": ("ColPali", "ColPaliProcessor"),
    "colqwen2": ("ColQwen2", "ColQwen2Processor"),
    "colqwen2_5": ("ColQwen2_5", "ColQwen2_5_Processor"),
    "colidefics3": ("ColIdefics3", "ColIdefics3Processor"),
}


@dataclass(frozen=True)
class PatchGrid:
    """Where a page's image tokens sit: an (n_x columns, n_y rows) grid of patches, and a
    boolean mask over the page's token sequence selecting those tokens in the processor's order."""

    n_x: int
    n_y: int
    mask: torch.Tensor  # (seq,) bool


class Retriever:
    def __init__(self, model, processor, family: str, model_id: str, batch_size: int = 4) -> None:
        self.model = model.eval()
        self.processor = processor
        self.family = family
        self.model_id = model_id
        self.batch_size = batch_size

    @classmethod
    def load(cls, settings: Settings) -> Retriever:
        """Load ``settings.retriever`` (hub id, local folder or PEFT adapter) on its device."""
        ensure_torchvision()
        source = locate(settings.retriever, "RAG_RETRIEVER")
        family = retriever_family(source)
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        models = importlib.import_module("colpali_engine.models")
        model_class, processor_class = (getattr(models, name) for name in CLASSES[family])
        try:
            # device_map, not .to(): ColPali leaves its unused lm_head on the meta device.
            model = model_class.from_pretrained(
                source.model_id,
                dtype=dtype,
                device_map=device,
                local_files_only=source.local_files_only,
                **attention_options(settings.attn_implementation),
            )
            processor = _load_processor(
                processor_class, source, _processor_options(settings, family)
            )
        except OSError as error:
            raise ModelNotFoundError(
                f"retriever {settings.retriever!r} could not be loaded ({_first_line(error)}); "
                "set RAG_RETRIEVER to a complete local folder or download it first"
            ) from error
        logger.info("retriever %s (%s) on %s/%s", settings.retriever, family, device, dtype)
        retriever = cls(model, processor, family, settings.retriever, settings.batch_size)
        if not settings.batch_size:  # auto: sized for the device
            probe = probe_page(settings.dpi, settings.max_page_pixels)
            retriever.batch_size = auto_batch_size(retriever, probe)
        return retriever

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    @torch.inference_mode()
    def embed_pages(self, images: list[Image.Image]) -> list[torch.Tensor]:
        """Embed page images, ``batch_size`` per forward pass; returns one (n_i, dim) float32
        CPU tensor per image, padding removed."""
        embeddings: list[torch.Tensor] = []
        for start in range(0, len(images), self.batch_size):
            embeddings += self.encode(self.preprocess(images[start : start + self.batch_size]))
        return embeddings

    def preprocess(self, images: list[Image.Image]):
        """The processor's model inputs for one batch of page images, on the CPU (no model:
        safe to run on another thread while ``encode`` runs)."""
        return self.processor.process_images([image.convert("RGB") for image in images])

    @torch.inference_mode()
    def encode(self, inputs) -> list[torch.Tensor]:
        """One forward pass over ``preprocess`` output: one (n_i, dim) float32 CPU tensor per
        page, padding removed."""
        return self._forward(inputs.to(self.device))

    @torch.inference_mode()
    def embed_query(self, text: str) -> torch.Tensor:
        """Embed one query; returns (q, dim) float32 on CPU, one row per token of
        ``query_token_ids(text)``."""
        inputs = self.processor.process_queries([text]).to(self.device)
        return self._forward(inputs)[0]

    def query_token_ids(self, text: str) -> list[int]:
        """The token ids ``embed_query`` embeds, in order (prefix and augmentation included)."""
        inputs = self.processor.process_queries([text])
        mask = inputs["attention_mask"][0].bool()
        return inputs["input_ids"][0][mask].tolist()

    def patch_grid(self, image: Image.Image) -> PatchGrid:
        """The patch grid of ``image`` as this processor lays it out, from the processor's own
        geometry (never constants); the mask indexes the page's unpadded token sequence."""
        inputs = self.processor.process_images([image.convert("RGB")])
        if self.family == "colidefics3":
            mask = self.processor.get_local_image_mask(inputs)[0]
            n_x, n_y = _idefics3_grid(self.processor, inputs["input_ids"][0], int(mask.sum()))
        elif self.family == "colpali":
            mask = self.processor.get_image_mask(inputs)[0]
            patch_size = self.model.config.vision_config.patch_size
            n_x, n_y = self.processor.get_n_patches(image.size, patch_size=patch_size)
        else:  # ColQwen2 / 2.5: image_size is (width, height), as PIL gives it
            mask = self.processor.get_image_mask(inputs)[0]
            merge = self.model.spatial_merge_size
            n_x, n_y = self.processor.get_n_patches(image.size, spatial_merge_size=merge)
        attention = inputs["attention_mask"][0].bool()
        return PatchGrid(int(n_x), int(n_y), mask[attention])

    def _forward(self, inputs) -> list[torch.Tensor]:
        output = self.model(**inputs)  # (batch, seq, dim), L2-normalised
        # one copy off the device for the whole batch (one wait on a GPU), then split per page
        output, mask = output.float().cpu(), inputs["attention_mask"].bool().cpu()
        return [row[keep] for row, keep in zip(output, mask, strict=True)]


def _processor_options(settings: Settings, family: str) -> dict[str, int]:
    if not settings.max_visual_tokens:
        return {}
    if family not in ("colqwen2", "colqwen2_5"):
        logger.warning("RAG_MAX_VISUAL_TOKENS applies to ColQwen models only; ignored")
        return {}
    return {"max_num_visual_tokens": settings.max_visual_tokens}


def _load_processor(processor_class, source, options: dict[str, int]):
    try:
        return processor_class.from_pretrained(
            source.model_id, local_files_only=source.local_files_only, **options
        )
    except OSError:
        if source.adapter_base is None:
            raise
        # Some adapters ship without processor files; their base has them.
        return processor_class.from_pretrained(
            source.adapter_base, local_files_only=source.local_files_only, **options
        )


def _idefics3_grid(processor, input_ids: torch.Tensor, n_local: int) -> tuple[int, int]:
    """(n_x, n_y) of an Idefics3 tiled page: tiles are marked by <row_i_col_j> tokens, each tile
    a square of tokens; colpali-engine's own get_n_patches does not follow the tiling."""
    tokens = processor.tokenizer.convert_ids_to_tokens(input_ids.tolist())
    tiles = [token for token in tokens if token.startswith("<row_")]
    side = math.isqrt(processor.image_seq_len)
    if not tiles:  # a page small enough to be a single tile
        return side, side
    rows = max(int(token.split("_")[1]) for token in tiles)
    cols = max(int(token.split("_")[3].rstrip(">")) for token in tiles)
    if rows * cols * side * side != n_local:
        raise ValueError(f"{rows}x{cols} tiles of {side}x{side} do not cover {n_local} tokens")
    return cols * side, rows * side


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
