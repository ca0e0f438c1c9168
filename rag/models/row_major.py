"""The vision towers' patch embeddings handed on in row-major order.

SigLIP-style towers (ColPali, colSmol, ColModernVBert, SmolVLM, PaliGemma, Gemma 3) make their
patch embeddings from the patch convolution's output, flattened and transposed: a
(tiles, patches, width) tensor laid out width-major. Adding the position embeddings keeps that
layout, and so does every residual addition after it, so each layer norm of the tower first
copies its input into row-major order: two copies of every tile's activations per layer, a
seventh of a page's encoding on a 2-core CPU. A forward hook on the embeddings makes their
output contiguous once; the values are the same, bit for bit.
"""

from __future__ import annotations

import torch

_MARK = "_rag_row_major"


def row_major_embeddings(model: torch.nn.Module) -> int:
    """Hook every vision embeddings module of ``model`` (idempotent); how many there are."""
    count = 0
    for module in model.modules():
        if type(module).__name__.endswith("VisionEmbeddings"):
            if not getattr(module, _MARK, False):
                module.register_forward_hook(_contiguous)
                setattr(module, _MARK, True)
            count += 1
    return count


def _contiguous(module, inputs, output):
    return output.contiguous() if isinstance(output, torch.Tensor) else output
