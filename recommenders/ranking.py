"""The shared ranker: masks (exclusions, whitelists) and top-k over dense score blocks.

Every model scores into a dense float32 block (customers x products); these functions turn a
block into ranked lists. Kept separate from the models so fusion and batch jobs reuse them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

NEG_INF = np.float32(-np.inf)


def apply_exclusions(scores: np.ndarray, exclude: sp.spmatrix | sp.sparray | None) -> None:
    """Set ``scores[i, j] = -inf`` in place wherever ``exclude`` has a stored entry."""
    if exclude is None:
        return
    matrix = sp.csr_matrix(exclude)
    if matrix.shape != scores.shape:
        raise ValueError(f"exclude has shape {matrix.shape}, scores have {scores.shape}")
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    scores[rows, matrix.indices] = NEG_INF


def apply_allowed(scores: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """``-inf`` wherever ``allowed`` is False; ``allowed`` is (n_products,) or scores' shape."""
    if allowed is None:
        return scores
    mask = np.asarray(allowed, dtype=bool)
    if mask.shape not in (scores.shape, scores.shape[1:]):
        raise ValueError(
            f"allowed has shape {mask.shape}, expected {scores.shape[1:]} or {scores.shape}"
        )
    return np.where(mask, scores, NEG_INF)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` per row: (indices int32 [n, k], scores float32 [n, k]), best first.

    Entries scoring ``-inf`` (excluded, not allowed) are never returned: their slots hold index
    ``-1`` and score ``-inf``, so a row has fewer than ``k`` real items when fewer are eligible.
    Within the returned items ties break towards the lower product index; equal score blocks
    always give equal lists.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n, p = scores.shape
    kk = min(k, p)
    if kk < p:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(p), (n, p))
    part_scores = np.take_along_axis(scores, part, axis=1)
    # Sort by (-score, index) so ties are deterministic.
    order = np.lexsort((part, -part_scores), axis=1)
    indices = np.take_along_axis(part, order, axis=1).astype(np.int32)
    values = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    indices[~np.isfinite(values) & (values < 0)] = -1
    if kk < k:
        indices = np.pad(indices, ((0, 0), (0, k - kk)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - kk)), constant_values=NEG_INF)
    return indices, values
