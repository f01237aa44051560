"""The block path compiled: gate, candidates, caps and backfill without Python per customer.

After the matrix product: a compiled pass adds each customer's risk-class penalty row (0 / -inf)
to the scores and sinks held products (from the holdings' sparse rows); numpy's ``argpartition``
picks the ``limit`` best per row; a compiled pass per customer sorts those (best first, ties by
position), lets the category cap take up to ``k`` and backfills the rest from popularity
(within the caps, then without). These are the rules of ``RecommendationService._assemble``
for a list without promotions; :func:`app.jobs.precompute.block.assemble_block` states them
as array operations and the tests hold the two equal (and both equal to the live service).
"""

from __future__ import annotations

import numpy as np
from numba import njit

FROM_CANDIDATES = 0


@njit(cache=True, nogil=True)
def _gate(
    scores: np.ndarray,  # float32 (m x P), gated in place
    rows: np.ndarray,  # int64 (m,): the block row of each score row
    risk: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    exclude_held: bool,
    penalty: np.ndarray,
    finite: np.ndarray,  # int64 (m,): out, how many scores of each row stay finite
) -> None:
    """Add each customer's risk-class penalty row (0 / -inf) and sink the products held."""
    size = scores.shape[1]
    for s in range(scores.shape[0]):
        i = rows[s]
        r = risk[i]
        for j in range(size):
            scores[s, j] += penalty[r, j]
        if exclude_held:
            for t in range(indptr[i], indptr[i + 1]):
                scores[s, indices[t]] = -np.inf
        count = 0
        for j in range(size):
            if scores[s, j] > -np.inf:
                count += 1
        finite[s] = count


@njit(cache=True, nogil=True)
def _lists(
    scores: np.ndarray,  # float32 (m x P) gated scores of the rows with ``scored`` set
    top: np.ndarray,  # int64 (m x L): their ``limit`` best positions, unordered (argpartition)
    scored: np.ndarray,  # bool (n,)
    risk: np.ndarray,  # int64 (n,)
    indptr: np.ndarray,  # holdings of the block (CSR)
    indices: np.ndarray,
    exclude_held: bool,
    allowed_by_class: np.ndarray,  # bool (6 x P)
    categories: np.ndarray,  # int64 (P,)
    n_cats: int,
    k: int,
    cap: int,  # < 0: no cap
    pool_index: np.ndarray,  # int64 (n,)
    pool_start: np.ndarray,  # int64 (pools + 1,): offsets into the three arrays below
    pool_order: np.ndarray,
    pool_scores: np.ndarray,
    pool_source: np.ndarray,
    out_pos: np.ndarray,  # int64 (n x k), filled with -1
    out_score: np.ndarray,  # float32 (n x k)
    out_source: np.ndarray,  # int8 (n x k)
) -> None:
    n = risk.shape[0]
    size = allowed_by_class.shape[1]
    held = np.zeros(size, dtype=np.bool_)
    best = np.empty(max(n_cats * max(cap, 0), 1), dtype=np.uint64)
    best_n = np.zeros(n_cats, dtype=np.int64)
    gated = np.empty(size, dtype=np.float32)
    bits = gated.view(np.uint32)
    keys = np.empty(size, dtype=np.uint64)
    cand_score = np.empty(size, dtype=np.float32)
    is_cand = np.zeros(size, dtype=np.bool_)
    taken = np.zeros(size, dtype=np.bool_)
    counts = np.zeros(n_cats, dtype=np.int64)
    cand = np.empty(size, dtype=np.int64)
    s_row = 0
    for i in range(n):
        r = risk[i]
        got = 0
        n_cand = 0
        counts[:] = 0
        if scored[i]:
            # The partition's candidates that passed the gate (finite scores); a row with no
            # more finite scores than candidates was not partitioned (top -1): all of them.
            if top[s_row, 0] < 0:
                for pos in range(size):
                    v = scores[s_row, pos]
                    if v > -np.inf:
                        gated[pos] = v
                        cand[n_cand] = pos
                        n_cand += 1
            else:
                for c in range(top.shape[1]):
                    pos = top[s_row, c]
                    v = scores[s_row, pos]
                    if v > -np.inf:
                        gated[pos] = v
                        cand[n_cand] = pos
                        n_cand += 1
            s_row += 1
            # Best first, ties by position: one sort of 64-bit keys (the score's bits mapped
            # to an order-preserving unsigned integer, inverted, above the position).
            for c in range(n_cand):
                pos = cand[c]
                # -0.0 equals 0.0 for the live sort, so both map to the key of 0.0.
                b = np.uint64(bits[pos]) if gated[pos] != 0 else np.uint64(0)
                u = (
                    (~b & np.uint64(0xFFFFFFFF))
                    if b >> np.uint64(31)
                    else (b | np.uint64(0x80000000))
                )
                keys[c] = ((np.uint64(0xFFFFFFFF) - u) << np.uint64(32)) | np.uint64(pos)
            for c in range(n_cand):
                pos = cand[c]
                is_cand[pos] = True
                cand_score[pos] = gated[pos]
            n_pick = n_cand
            if cap >= 0:
                # The cap takes an item when fewer than ``cap`` of its category rank above it:
                # keep each category's ``cap`` best keys, then only those need sorting.
                best_n[:] = 0
                for c in range(n_cand):
                    key = keys[c]
                    cat = categories[np.int64(key & np.uint64(0xFFFFFFFF))]
                    base = cat * cap
                    m = best_n[cat]
                    if m == cap:
                        if cap == 0 or key >= best[base + cap - 1]:
                            continue
                        m -= 1  # the category's worst kept key drops out
                    d = m
                    while d > 0 and best[base + d - 1] > key:
                        best[base + d] = best[base + d - 1]
                        d -= 1
                    best[base + d] = key
                    best_n[cat] = m + 1
                n_pick = 0
                for cat in range(n_cats):
                    for d in range(best_n[cat]):
                        keys[n_pick] = best[cat * cap + d]
                        n_pick += 1
            keys[:n_pick].sort()
            for c in range(min(n_pick, k)):
                pos = int(keys[c] & np.uint64(0xFFFFFFFF))
                counts[categories[pos]] += 1
                taken[pos] = True
                out_pos[i, got] = pos
                out_score[i, got] = gated[pos]
                out_source[i, got] = FROM_CANDIDATES
                got += 1
        if got < k:
            # The gate for backfill (candidates were gated through their scores): the risk
            # class's row and the products held, marked for this row only.
            if exclude_held:
                for t in range(indptr[i], indptr[i + 1]):
                    held[indices[t]] = True
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
                    if not allowed_by_class[r, pos] or held[pos] or taken[pos]:
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
            if exclude_held:
                for t in range(indptr[i], indptr[i + 1]):
                    held[indices[t]] = False
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(positions, scores, source)`` (n x k each, left-aligned, -1 padded) for a block.

    ``scores`` (raw model scores of the ``scored`` rows) are gated in place.
    """
    n = risk.shape[0]
    size = allowed_by_class.shape[1]
    out_pos = np.full((n, k), -1, dtype=np.int64)
    out_score = np.zeros((n, k), dtype=np.float32)
    out_source = np.zeros((n, k), dtype=np.int8)
    risk = np.ascontiguousarray(risk, dtype=np.int64)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    if scores is None:
        scores = np.zeros((0, size), dtype=np.float32)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    m = scores.shape[0]
    finite = np.zeros(m, dtype=np.int64)
    if m:
        rows = np.flatnonzero(scored).astype(np.int64)
        _gate(scores, rows, risk, indptr, indices, bool(exclude_held), penalty, finite)
    # numpy's partition (vectorised, and the very selection the live path makes, ties included)
    # for the rows with more finite scores than candidates; the others keep every finite score
    # (the same set), and a partition through their run of -inf would be slow.
    top = np.full((m, min(limit, size)), -1, dtype=np.int64)
    wide = np.flatnonzero(finite > limit)
    if wide.size == m and m:
        top[:] = np.argpartition(scores, size - limit, axis=1)[:, size - limit :]
    elif wide.size:
        top[wide] = np.argpartition(scores[wide], size - limit, axis=1)[:, size - limit :]
    start, order, values, source = pools
    _lists(
        scores,
        top,
        np.ascontiguousarray(scored, dtype=np.bool_),
        risk,
        indptr,
        indices,
        bool(exclude_held),
        allowed_by_class,
        categories,
        int(categories.max()) + 1 if categories.size else 1,
        k,
        -1 if cap is None else int(cap),
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
