"""Token pooling for the pooled index mode: colpali-engine's HierarchicalTokenPooler algorithm,
computed ~8x faster.

The pooler clusters a page's vectors by Ward linkage over the rows of ``D = 1 - E E^T`` taken as
points (Euclidean), cuts the tree at ``n // pool_factor`` clusters and keeps each cluster's
L2-normalised mean, in cluster order. Its cost is scipy building the pairwise distances of ``n``
points in ``n`` dimensions. The same distances follow from the Gram matrix of those rows,
``D D^T``; since ``D = 1 - S`` with ``S = E E^T`` symmetric, ``|D_i - D_j|^2 = |S_i - S_j|^2`` and
the Gram matrix of the rows of ``S`` is ``E (E^T E) E^T``: two thin float64 matmuls. The tree,
the cut and the means are colpali-engine's (scipy's) own; ``tests/test_pooling.py`` checks that
the output equals HierarchicalTokenPooler's.
"""

from __future__ import annotations

import numpy as np
import torch


def pool_page(page: torch.Tensor, pool_factor: int) -> torch.Tensor:
    """One page's (n, dim) vectors pooled to ~n / pool_factor L2-normalised float32 vectors."""
    embedding = page.float().cpu()
    n_tokens = embedding.shape[0]
    if pool_factor <= 1 or n_tokens <= 1:
        return embedding  # as the pooler does for a factor of 1; one vector is its own pool
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    wide = embedding.double()
    gram = (wide @ (wide.T @ wide)) @ wide.T  # Gram matrix of the rows of E E^T
    squared = gram.diagonal()[:, None] + gram.diagonal()[None, :] - 2 * gram
    pairwise = squared.clamp_(min=0).sqrt_().numpy()
    np.fill_diagonal(pairwise, 0)
    tree = linkage(squareform(pairwise, checks=False), method="ward")
    n_clusters = max(n_tokens // pool_factor, 1)
    labels = torch.from_numpy(fcluster(tree, t=n_clusters, criterion="maxclust") - 1).long()
    counts = torch.bincount(labels, minlength=n_clusters)
    sums = torch.zeros(n_clusters, embedding.shape[1]).index_add_(0, labels, embedding)
    means = sums[counts > 0] / counts[counts > 0, None]
    return torch.nn.functional.normalize(means, p=2, dim=-1)


def pool_pages(pages: list[torch.Tensor], pool_factor: int) -> list[torch.Tensor]:
    """``pool_page`` of every page, L2-normalised float32 on the CPU."""
    return [torch.nn.functional.normalize(pool_page(page, pool_factor), dim=-1) for page in pages]
