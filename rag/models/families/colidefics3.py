"""ColIdefics3 (colSmol): SmolVLM with a 128-d projection; pages split into square tiles plus
a global view (vidore/colSmol-256M, vidore/colSmol-500M: small GPUs and CPUs).

colpali-engine 0.3.18's ``get_n_patches`` does not follow the tiling (an A4 page gave 48 patches
for 64 image tokens), so the grid is read from the ``<row_i_col_j>`` tile tokens the processor
wrote, over the local tiles' tokens (``get_local_image_mask``, the global view excluded), and the
maps come from the processor's own method, which puts tile tokens back in page order."""

from __future__ import annotations

import math

from rag.models.families.base import RetrieverFamily, unpadded
from rag.models.families.tiling import edge_for_tokens


class ColIdefics3(RetrieverFamily):
    name = "colidefics3"
    label = "ColIdefics3 (colSmol)"
    architectures = ("ColIdefics3",)
    model_types = ("idefics3",)
    examples = ("vidore/colSmol-256M", "vidore/colSmol-500M")
    model_class = "ColIdefics3"
    processor_class = "ColIdefics3Processor"
    tiled = True

    def limit_pages(self, processor, max_visual_tokens):
        image_processor = processor.image_processor
        edge = edge_for_tokens(image_processor, processor.image_seq_len, max_visual_tokens)
        image_processor.size = type(image_processor.size)(longest_edge=edge)
        return True

    def patch_grid(self, model, processor, image):
        inputs = processor.process_images([image.convert("RGB")])
        mask = processor.get_local_image_mask(inputs)[0]
        n_x, n_y = tile_grid(processor, inputs["input_ids"][0], int(mask.sum()))
        return unpadded(n_x, n_y, mask, inputs)

    def similarity_maps(self, processor, page_embedding, query_embedding, grid):
        return processor.get_similarity_maps_from_embeddings(
            image_embeddings=page_embedding.float()[None],
            query_embeddings=query_embedding.float()[None],
            n_patches=(grid.n_x, grid.n_y),
            image_mask=grid.mask[None],
        )[0]


def tile_grid(processor, input_ids, n_local: int) -> tuple[int, int]:
    """(n_x, n_y) of a tiled page: tiles are marked by <row_i_col_j> tokens, each tile a square
    of tokens."""
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


RETRIEVER = ColIdefics3()
