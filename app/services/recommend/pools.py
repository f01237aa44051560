"""Backfill pools: each segment's popularity list followed by the overall list, without repeats.

Built once per catalogue snapshot and walked by the compiled list assembly
(:mod:`app.services.recommend.kernel`) for live requests and for the batch job alike, in the
order :func:`app.services.recommend.candidates.popular` walks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.services.recommend.catalog import CatalogSnapshot

# Where an item of a block list came from (decides its score and reason codes).
FROM_CANDIDATES = 0
FROM_SEGMENT = 1
FROM_POPULAR = 2


@dataclass(frozen=True)
class Pool:
    """One popularity pool in backfill order, as ``candidates.popular`` walks it."""

    order: np.ndarray  # int64 catalogue positions, best first, no repeats
    scores: np.ndarray  # float32 per entry of ``order`` (what the service would report)
    source: np.ndarray  # int8 per entry: FROM_SEGMENT or FROM_POPULAR


@dataclass(frozen=True)
class Pools:
    """The overall pool (index 0) and one pool per segment with take-up (index 1..)."""

    pools: list[Pool]
    segment_index: dict[str, int]

    def index_of(self, segment: str | None) -> int:
        return self.segment_index.get(segment, 0) if segment is not None else 0

    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(start offsets, orders, scores, sources)`` of every pool, concatenated."""
        sizes = [p.order.shape[0] for p in self.pools]
        start = np.zeros(len(sizes) + 1, dtype=np.int64)
        start[1:] = np.cumsum(sizes)
        return (
            start,
            np.concatenate([p.order for p in self.pools]).astype(np.int64),
            np.concatenate([p.scores for p in self.pools]).astype(np.float32),
            np.concatenate([p.source for p in self.pools]).astype(np.int8),
        )


def _pool(lists: list[tuple[np.ndarray, np.ndarray, int]]) -> Pool:
    order: list[int] = []
    scores: list[float] = []
    source: list[int] = []
    seen: set[int] = set()
    for positions, values, code in lists:
        for pos in positions.tolist():
            if pos in seen:
                continue
            seen.add(pos)
            order.append(pos)
            scores.append(float(values[pos]))
            source.append(code)
    return Pool(
        np.asarray(order, dtype=np.int64),
        np.asarray(scores, dtype=np.float32),
        np.asarray(source, dtype=np.int8),
    )


def build_pools(catalog: CatalogSnapshot) -> Pools:
    """Every backfill pool of a catalogue snapshot, built once per run (not per customer)."""
    overall = (catalog.popular_order, catalog.popularity, FROM_POPULAR)
    pools = [_pool([overall])]
    index: dict[str, int] = {}
    for segment in sorted(catalog.segment_order):
        seg = (catalog.segment_order[segment], catalog.segment_popularity[segment], FROM_SEGMENT)
        index[segment] = len(pools)
        pools.append(_pool([seg, overall]))
    return Pools(pools, index)
