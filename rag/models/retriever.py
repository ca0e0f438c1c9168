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

import torch
from PIL import Image

from rag.config import Settings
from rag.errors import ModelNotFoundError
from rag.models.batching import auto_batch_size, probe_page
from rag.models.checkpoints import configured, locate, pretrained_options
from rag.models.families import retriever_family
from rag.models.families.base import PatchGrid, RetrieverFamily
from rag.models.row_major import row_major_embeddings
from rag.models.torch_compat import ensure_torchvision

logger = logging.getLogger(__name__)

__all__ = ["PatchGrid", "Retriever"]


class Retriever:
    def __init__(
        self, model, processor, family: RetrieverFamily, model_id: str, batch_size: int = 1
    ) -> None:
        self.model = model.eval()
        row_major_embeddings(model)  # same values, fewer copies (rag.models.row_major)
        family.trim(model)
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
        options = pretrained_options(settings, source)
        family.prepare()
        models = importlib.import_module("colpali_engine.models")
        model_class = getattr(models, family.model_class)
        processor_class = getattr(models, family.processor_class)
        try:
            # device_map, not .to(): ColPali leaves its unused lm_head on the meta device.
            model = configured(model_class.from_pretrained(source.model_id, **options), settings)
            processor = _budgeted_processor(processor_class, source, family, settings)
        except OSError as error:
            raise ModelNotFoundError(
                f"retriever {settings.retriever!r} could not be loaded ({_first_line(error)}); "
                "set RAG_RETRIEVER to a complete local folder or download it first"
            ) from error
        logger.info(
            "retriever %s (%s) on %s/%s",
            settings.retriever,
            family.label,
            options["device_map"],
            options["dtype"],
        )
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
        return self.family.patch_grid(self.model, self.processor, image)

    def _forward(self, inputs) -> list[torch.Tensor]:
        output = self.model(**inputs)  # (batch, seq, dim), L2-normalised
        # one copy off the device for the whole batch (one wait on a GPU), then split per page
        output, mask = output.float().cpu(), inputs["attention_mask"].bool().cpu()
        return [row[keep] for row, keep in zip(output, mask, strict=True)]


def _budgeted_processor(processor_class, source, family: RetrieverFamily, settings: Settings):
    """The checkpoint's processor, held to RAG_MAX_VISUAL_TOKENS where that is below the
    checkpoint's own budget (a budget never raises a page's resolution)."""
    own = _load_processor(processor_class, source, {})
    budget = settings.max_visual_tokens
    if not budget:
        return own
    options = family.processor_options(budget)
    if options:
        held = _load_processor(processor_class, source, options)
        return held if _max_pixels(held) < _max_pixels(own) else own
    if not family.limit_pages(own, budget):
        logger.warning("RAG_MAX_VISUAL_TOKENS does not apply to %s; ignored", family.label)
    return own


def _max_pixels(processor) -> float:
    """A Qwen-style processor's pixel budget per page (``size.longest_edge`` counts pixels)."""
    size = processor.image_processor.size
    return getattr(size, "longest_edge", None) or float("inf")


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


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
