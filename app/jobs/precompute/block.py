"""The serving list assembly for a block of customers at once: caps, backfill and reason sources.

:meth:`RecommendationService._assemble` builds one customer's list from ranked candidates:
take candidates best first under the per-category cap, then fill to ``k`` from the popularity
pool (the customer's segment list, then the overall list) within the caps, then without them.
Here the same rules are stated as array operations over a block of customers: the readable
form that the compiled loop the job runs (:mod:`app.jobs.precompute.kernel`) is tested against.
Without campaign promotions (a batch never bakes them in) the result is the same list, item for
item; the parity tests hold both equal to the live service. The popularity pools are built
here once per run and used by both forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.services.recommend.pools import (  # re-exported for the job
    FROM_CANDIDATES,
    FROM_POPULAR,
    FROM_SEGMENT,
    Pool,
    Pools,
    build_pools,
)
from recommenders.policy import category_cap_take

__all__ = [
    "FROM_CANDIDATES",
    "FROM_POPULAR",
    "FROM_SEGMENT",
    "BlockLists",
    "Pool",
    "Pools",
    "assemble_block",
    "build_pools",
]


@dataclass
class BlockLists:
    """Final lists of a block: row ``i`` holds customer ``i``'s items left-aligned, -1 padded."""

    positions: np.ndarray  # int64 (n x k)
    scores: np.ndarray  # float32 (n x k)
    source: np.ndarray  # int8 (n x k): FROM_CANDIDATES / FROM_SEGMENT / FROM_POPULAR


def _place(
    out: BlockLists,
    rows: np.ndarray,
    start: np.ndarray,
    take: np.ndarray,
    positions: np.ndarray,
    scores: np.ndarray,
    source: np.ndarray,
) -> np.ndarray:
    """Append the taken entries of each row after its ``start`` items; returns the new counts."""
    r, c = np.nonzero(take)
    counts = take.sum(axis=1)
    if r.size:
        first = np.cumsum(counts) - counts  # index in (r, c) of each row's first taken entry
        slot = start[r] + np.arange(r.size) - first[r]
        out.positions[rows[r], slot] = positions[r, c] if positions.ndim == 2 else positions[c]
        out.scores[rows[r], slot] = scores[r, c]
        out.source[rows[r], slot] = source[r, c] if source.ndim == 2 else source[c]
    return np.asarray(start + counts)


def assemble_block(
    top: np.ndarray,
    values: np.ndarray,
    allowed: np.ndarray,
    pool_index: np.ndarray,
    pools: Pools,
    categories: np.ndarray,
    k: int,
    cap: int | None,
) -> BlockLists:
    """Lists for a block from ranked candidates (``top``/``values``, -1 / -inf padded).

    ``allowed`` is the gate (customers x catalogue), ``pool_index`` each customer's backfill
    pool (:meth:`Pools.index_of`), ``categories`` the category code per catalogue position.
    """
    n = top.shape[0]
    out = BlockLists(
        np.full((n, k), -1, dtype=np.int64),
        np.zeros((n, k), dtype=np.float32),
        np.zeros((n, k), dtype=np.int8),
    )
    every = np.arange(n)
    n_cats = int(categories.max()) + 1 if categories.size else 1
    # The gate is re-applied to the candidates, as the service does whatever the source said.
    valid = top >= 0
    valid &= np.take_along_axis(allowed, np.where(valid, top, 0), axis=1)
    taken = category_cap_take(categories[np.where(valid, top, 0)], valid, None, np.full(n, k), cap)
    got = _place(
        out, every, np.zeros(n, dtype=np.int64), taken, top, values, np.zeros_like(top, np.int8)
    )
    short = np.flatnonzero(got < k)
    if short.size == 0:
        return out
    for p in np.unique(pool_index[short]).tolist():
        rows = short[pool_index[short] == p]
        pool = pools.pools[p]
        have = out.positions[rows]
        held = have >= 0
        # Candidates keep their own score and reasons when backfill takes them (uncapped pass).
        cand_score = np.full((rows.size, allowed.shape[1]), np.nan, dtype=np.float32)
        r_c, c_c = np.nonzero(valid[rows])
        cand_score[r_c, top[rows][r_c, c_c]] = values[rows][r_c, c_c]
        chosen = np.zeros((rows.size, allowed.shape[1]), dtype=bool)
        r_h, c_h = np.nonzero(held)
        chosen[r_h, have[r_h, c_h]] = True
        avail = allowed[rows][:, pool.order] & ~chosen[:, pool.order]
        counts = np.zeros((rows.size, n_cats), dtype=np.int32)
        np.add.at(counts, (r_h, categories[have[r_h, c_h]]), 1)
        need = k - got[rows]
        local_scores = np.where(
            np.isnan(cand_score[:, pool.order]), pool.scores, cand_score[:, pool.order]
        )
        local_source = np.where(
            np.isnan(cand_score[:, pool.order]), pool.source, np.int8(FROM_CANDIDATES)
        ).astype(np.int8)
        pool_cats = categories[pool.order]
        passes = [cap, None] if cap is not None else [None]
        start = got[rows]
        for limit in passes:
            take = category_cap_take(pool_cats, avail, counts, need, limit)
            start = _place(out, rows, start, take, pool.order, local_scores, local_source)
            avail &= ~take
            need = k - start
            if limit is not None:
                counts = counts.copy()
                r_t, c_t = np.nonzero(take)
                np.add.at(counts, (r_t, pool_cats[c_t]), 1)
        got[rows] = start
    return out
