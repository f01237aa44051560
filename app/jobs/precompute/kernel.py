"""The batch form of the compiled list assembly: a block of customers in one compiled call.

After the matrix product, each scored row gets its risk class's penalty row (0 / -inf) and its
held products sunk (from the holdings' sparse rows), and then the very function the live API
runs for one customer (:func:`app.services.recommend.kernel.select_row`) builds its list;
customers without model scores get popularity only. :func:`app.jobs.precompute.block.
assemble_block` states the same rules as array operations, and the tests hold the two equal
(and both equal to the live service).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from app.services.recommend.kernel import select_row

_NEG_INF = np.float32(-np.inf)


@njit(cache=True, nogil=True)
def _block(
    scores: np.ndarray,  # float32 (m x P): raw model scores of the rows with ``scored`` set
    scored: np.ndarray,  # bool (n,)
    risk: np.ndarray,  # int64 (n,)
    indptr: np.ndarray,  # holdings of the block (CSR)
    indices: np.ndarray,
    exclude_held: bool,
    allowed_by_class: np.ndarray,  # bool (6 x P)
    penalty: np.ndarray,  # float32 (6 x P): 0 allowed, -inf not
    categories: np.ndarray,  # int64 (P,)
    n_cats: int,
    k: int,
    cap: int,  # < 0: no cap
    limit: int,
    pool_index: np.ndarray,  # int64 (n,)
    pool_start: np.ndarray,  # int64 (pools + 1,): offsets into the three arrays below
    pool_order: np.ndarray,
    pool_scores: np.ndarray,
    pool_source: np.ndarray,
    out_pos: np.ndarray,  # int64 (n x k)
    out_score: np.ndarray,  # float32 (n x k)
    out_source: np.ndarray,  # int8 (n x k)
) -> None:
    n = risk.shape[0]
    size = allowed_by_class.shape[1]
    room = max(n_cats * max(cap, 0), k, 1)
    best_v = np.empty(room, dtype=np.float32)
    best_p = np.empty(room, dtype=np.int64)
    counts = np.zeros(max(n_cats, 1), dtype=np.int64)
    taken = np.zeros(size, dtype=np.bool_)
    capped = np.empty(0, dtype=np.int64)
    allowed = np.empty(size, dtype=np.bool_)
    blank = np.full(size, _NEG_INF, dtype=np.float32)  # an unscored row: no candidates
    s_row = 0
    for i in range(n):
        r = risk[i]
        for j in range(size):
            allowed[j] = allowed_by_class[r, j]
        if exclude_held:
            for t in range(indptr[i], indptr[i + 1]):
                allowed[indices[t]] = False
        if scored[i]:
            g = scores[s_row]
            s_row += 1
            for j in range(size):
                g[j] += penalty[r, j]
            if exclude_held:
                for t in range(indptr[i], indptr[i + 1]):
                    g[indices[t]] = _NEG_INF
        else:
            g = blank
        p = pool_index[i]
        lo, hi = pool_start[p], pool_start[p + 1]
        select_row(
            g,
            allowed,
            categories,
            n_cats,
            k,
            cap,
            limit,
            pool_order[lo:hi],
            pool_scores[lo:hi],
            pool_source[lo:hi],
            out_pos[i],
            out_score[i],
            out_source[i],
            best_v,
            best_p,
            counts,
            taken,
            capped,
            False,
        )


def block_lists(
    scores: np.ndarray | None,
    scored: np.ndarray,
    risk: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    exclude_held: bool,
    allowed_by_class: np.ndarray,
    penalty: np.ndarray,
    categories: np.ndarray,
    k: int,
    limit: int,
    cap: int | None,
    pool_index: np.ndarray,
    pools: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(positions, scores, source)`` (n x k each, left-aligned, -1 padded) for a block.

    ``scores`` (raw model scores of the ``scored`` rows) are gated in place.
    """
    n = risk.shape[0]
    size = allowed_by_class.shape[1]
    out_pos = np.full((n, k), -1, dtype=np.int64)
    out_score = np.zeros((n, k), dtype=np.float32)
    out_source = np.zeros((n, k), dtype=np.int8)
    if scores is None:
        scores = np.zeros((0, size), dtype=np.float32)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    start, order, values, source = pools
    _block(
        scores,
        np.ascontiguousarray(scored, dtype=np.bool_),
        np.ascontiguousarray(risk, dtype=np.int64),
        np.ascontiguousarray(indptr, dtype=np.int64),
        np.ascontiguousarray(indices, dtype=np.int64),
        bool(exclude_held),
        allowed_by_class,
        penalty,
        categories,
        int(categories.max()) + 1 if categories.size else 1,
        k,
        -1 if cap is None else int(cap),
        min(limit, size),
        np.ascontiguousarray(pool_index, dtype=np.int64),
        start,
        order,
        values,
        source,
        out_pos,
        out_score,
        out_source,
    )
    return out_pos, out_score, out_source
