"""The block path compiled: gate, top candidates, caps and backfill in one pass per customer.

After the matrix product, each customer's row is walked once in compiled code: the risk class's
penalty row (0 / -inf) is added and held products are sunk, the ``limit`` best candidates are
selected (threshold by partition, then a stable sort: best first, ties by position), the
category cap takes up to ``k`` of them, and popularity backfills the rest (within the caps,
then without). These are the rules of ``RecommendationService._assemble`` for a list without
promotions; :func:`app.jobs.precompute.block.assemble_block` states them as array operations
and the tests hold the two equal (and both equal to the live service).
"""

from __future__ import annotations

import numpy as np
from numba import njit  # type: ignore[import-untyped]

FROM_CANDIDATES = 0


@njit(cache=True, nogil=True)  # type: ignore[misc]
def _kth_smallest(a: np.ndarray, n: int, kth: int) -> float:
    """The ``kth`` smallest of ``a[:n]`` (reorders ``a``): Hoare quickselect, median of three.

    Written out because numba's ``np.partition`` copies and costs ~20x this on short rows."""
    lo, hi = 0, n - 1
    while hi > lo:
        x, y, z = a[lo], a[(lo + hi) >> 1], a[hi]
        if x > y:
            x, y = y, x
        if y > z:
            y = z
        if x > y:
            y = x
        pivot = y
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            break
    return float(a[kth])


@njit(cache=True, nogil=True)  # type: ignore[misc]
def _lists(
    scores: np.ndarray,  # float32 (m x P) raw model scores of the rows with ``scored`` set
    scored: np.ndarray,  # bool (n,)
    risk: np.ndarray,  # int64 (n,)
    indptr: np.ndarray,  # holdings of the block (CSR)
    indices: np.ndarray,
    exclude_held: bool,
    allowed_by_class: np.ndarray,  # bool (6 x P)
    penalty: np.ndarray,  # float32 (6 x P)
    categories: np.ndarray,  # int64 (P,)
    n_cats: int,
    k: int,
    limit: int,
    cap: int,  # < 0: no cap
    pool_index: np.ndarray,  # int64 (n,)
    pool_start: np.ndarray,  # int64 (pools + 1,): offsets into the three arrays below
    pool_order: np.ndarray,
    pool_scores: np.ndarray,
    pool_source: np.ndarray,
    out_pos: np.ndarray,  # int64 (n x k), filled with -1
    out_score: np.ndarray,  # float32 (n x k)
    out_source: np.ndarray,  # int8 (n x k)
    tied: np.ndarray,  # bool (n,): rows left to the caller (ties across the candidate cut)
) -> None:
    n = risk.shape[0]
    size = allowed_by_class.shape[1]
    allowed = np.empty(size, dtype=np.bool_)
    gated = np.empty(size, dtype=np.float32)
    cand_score = np.empty(size, dtype=np.float32)
    is_cand = np.zeros(size, dtype=np.bool_)
    taken = np.zeros(size, dtype=np.bool_)
    counts = np.zeros(n_cats, dtype=np.int64)
    finite = np.empty(size, dtype=np.float32)
    cand = np.empty(size, dtype=np.int64)
    s_row = 0
    for i in range(n):
        r = risk[i]
        got = 0
        n_cand = 0
        counts[:] = 0
        if scored[i]:
            # Gate fused into the scores: the class's penalty row, then holdings sunk.
            for j in range(size):
                gated[j] = scores[s_row, j] + penalty[r, j]
            if exclude_held:
                for t in range(indptr[i], indptr[i + 1]):
                    gated[indices[t]] = -np.inf
            s_row += 1
            n_finite = 0
            for j in range(size):
                if gated[j] > -np.inf:
                    finite[n_finite] = gated[j]
                    n_finite += 1
            # The ``limit`` best finite scores, collected in position order: everything at or
            # above the limit-th best value. If more equal that value than fit, which of them
            # ``argpartition`` keeps (as the live path does) is its own affair: the caller
            # ranks such a row the array way.
            threshold = -np.inf
            if n_finite > limit:
                threshold = _kth_smallest(finite, n_finite, n_finite - limit)
            for j in range(size):
                v = gated[j]
                if v >= threshold and v > -np.inf:
                    cand[n_cand] = j
                    n_cand += 1
            if n_finite > limit and n_cand > limit:
                tied[i] = True
                continue
            # Best first; insertion sort moves an item only past strictly lower scores, so
            # equal scores keep position order (candidates were collected by position).
            for c in range(1, n_cand):
                pos = cand[c]
                v = gated[pos]
                d = c
                while d > 0 and gated[cand[d - 1]] < v:
                    cand[d] = cand[d - 1]
                    d -= 1
                cand[d] = pos
            for c in range(n_cand):
                pos = cand[c]
                is_cand[pos] = True
                cand_score[pos] = gated[pos]
            # Category cap over the candidates, best first.
            for c in range(n_cand):
                if got >= k:
                    break
                pos = cand[c]
                cat = categories[pos]
                if cap >= 0 and counts[cat] >= cap:
                    continue
                counts[cat] += 1
                taken[pos] = True
                out_pos[i, got] = pos
                out_score[i, got] = gated[pos]
                out_source[i, got] = FROM_CANDIDATES
                got += 1
        if got < k:
            # The gate as a mask, for backfill (candidates were gated through their scores).
            for j in range(size):
                allowed[j] = allowed_by_class[r, j]
            if exclude_held:
                for t in range(indptr[i], indptr[i + 1]):
                    allowed[indices[t]] = False
            p = pool_index[i]
            full = 0
            if cap >= 0:
                for c in range(n_cats):
                    if counts[c] >= cap:
                        full += 1
            for sweep in range(2):
                if sweep == 1 and cap < 0:
                    break
                if sweep == 0 and cap >= 0 and full == n_cats:
                    continue  # every category is at its cap: the capped sweep takes nothing
                for t in range(pool_start[p], pool_start[p + 1]):
                    if got >= k:
                        break
                    pos = pool_order[t]
                    if not allowed[pos] or taken[pos]:
                        continue
                    cat = categories[pos]
                    if sweep == 0 and cap >= 0 and counts[cat] >= cap:
                        continue
                    counts[cat] += 1
                    taken[pos] = True
                    out_pos[i, got] = pos
                    if is_cand[pos]:  # a candidate keeps its own score and reasons
                        out_score[i, got] = cand_score[pos]
                        out_source[i, got] = FROM_CANDIDATES
                    else:
                        out_score[i, got] = pool_scores[t]
                        out_source[i, got] = pool_source[t]
                    got += 1
        # Reset the scratch marks this row set (cheaper than clearing whole arrays).
        for g in range(got):
            taken[out_pos[i, g]] = False
        if scored[i]:
            for c in range(n_cand):
                is_cand[cand[c]] = False


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(positions, scores, source)`` (n x k each, left-aligned, -1 padded) for a block, and
    the rows it left unfilled because equal scores straddle the candidate cut."""
    n = risk.shape[0]
    size = allowed_by_class.shape[1]
    out_pos = np.full((n, k), -1, dtype=np.int64)
    out_score = np.zeros((n, k), dtype=np.float32)
    out_source = np.zeros((n, k), dtype=np.int8)
    tied = np.zeros(n, dtype=np.bool_)
    if scores is None:
        scores = np.zeros((0, size), dtype=np.float32)
    start, order, values, source = pools
    _lists(
        np.ascontiguousarray(scores, dtype=np.float32),
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
        limit,
        -1 if cap is None else int(cap),
        np.ascontiguousarray(pool_index, dtype=np.int64),
        start,
        order,
        values,
        source,
        out_pos,
        out_score,
        out_source,
        tied,
    )
    return out_pos, out_score, out_source, tied
