"""The product catalogue and popularity, held in memory as immutable snapshots.

A snapshot is read from the database at start-up and refreshed in the background; requests only
ever read the current snapshot, so the catalogue is never a database round trip. Popularity
(overall and per customer segment) is the fallback every request can fall back on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Customer, Holding, Interaction, Product
from recommenders.policy import allowed_by_risk_class, parse_level

_versions = itertools.count(1)


@dataclass(frozen=True, eq=False)
class CatalogSnapshot:
    """Every product (any status) in a fixed order, with popularity rankings."""

    product_ids: np.ndarray  # str
    names: tuple[str, ...]
    categories: tuple[str, ...]
    category_codes: np.ndarray  # int32
    risk_level: np.ndarray  # int8, 0 = malformed
    active: np.ndarray  # bool
    index: Mapping[str, int]
    popularity: np.ndarray  # float32, overall
    popular_order: np.ndarray  # positions by popularity, best first (every product)
    segment_order: Mapping[str, np.ndarray]  # segment -> positions with any take-up, best first
    segment_popularity: Mapping[str, np.ndarray]  # segment -> float32 per position
    loaded_at: datetime
    version: int
    category_list: list[int]  # category_codes as a list (fast scalar access on the hot path)
    allowed_by_class: np.ndarray  # bool (6 x products): the gate before holdings, per risk class

    @property
    def size(self) -> int:
        return len(self.names)  # one per product, like ``product_ids`` (a tuple's len is cheap)

    def same_content(self, other: CatalogSnapshot) -> bool:
        """Whether ``other`` holds the same products, statuses, risk levels and popularity
        (only ``loaded_at`` and ``version`` may differ)."""
        return (
            self.names == other.names
            and self.categories == other.categories
            and np.array_equal(self.product_ids, other.product_ids)
            and np.array_equal(self.risk_level, other.risk_level)
            and np.array_equal(self.active, other.active)
            and np.array_equal(self.popularity, other.popularity)
            and self.segment_popularity.keys() == other.segment_popularity.keys()
            and all(
                np.array_equal(values, other.segment_popularity[segment])
                for segment, values in self.segment_popularity.items()
            )
        )

    def positions(self, product_ids: Iterable[str]) -> np.ndarray:
        """Catalogue positions of the given IDs (unknown IDs are skipped)."""
        index = self.index
        return np.fromiter((index[p] for p in product_ids if p in index), dtype=np.int64)

    @classmethod
    def build(
        cls,
        products: list[tuple[str, str, str, str, str]],
        popularity: Mapping[str, float] | None = None,
        segment_popularity: Mapping[str, Mapping[str, float]] | None = None,
    ) -> CatalogSnapshot:
        """From ``(product_id, name, category, risk_level, status)`` rows and popularity counts."""
        rows = sorted(products, key=lambda r: r[0])
        ids = np.asarray([r[0] for r in rows], dtype=object)
        index = {pid: i for i, pid in enumerate(ids.tolist())}
        categories = tuple(r[2] for r in rows)
        vocab = {c: i for i, c in enumerate(sorted(set(categories)))}
        pop = np.zeros(len(rows), dtype=np.float32)
        for pid, value in (popularity or {}).items():
            if pid in index:
                pop[index[pid]] = value
        seg_pop: dict[str, np.ndarray] = {}
        seg_order: dict[str, np.ndarray] = {}
        for segment, counts in (segment_popularity or {}).items():
            values = np.zeros(len(rows), dtype=np.float32)
            for pid, value in counts.items():
                if pid in index:
                    values[index[pid]] = value
            order = _order(values)
            seg_pop[segment] = values
            seg_order[segment] = order[values[order] > 0]
        category_codes = np.asarray([vocab[c] for c in categories], dtype=np.int32)
        risk_level = np.asarray([parse_level(r[3], "R") for r in rows], dtype=np.int8)
        active = np.asarray([r[4] == "active" for r in rows], dtype=bool)
        return cls(
            product_ids=ids,
            names=tuple(r[1] for r in rows),
            categories=categories,
            category_codes=category_codes,
            risk_level=risk_level,
            active=active,
            index=index,
            popularity=pop,
            popular_order=_order(pop),
            segment_order=seg_order,
            segment_popularity=seg_pop,
            loaded_at=datetime.now(UTC),
            version=next(_versions),
            category_list=category_codes.tolist(),
            allowed_by_class=allowed_by_risk_class(risk_level, active),
        )


def _order(values: np.ndarray) -> np.ndarray:
    """Positions by value descending, ties by position (stable and deterministic)."""
    return np.lexsort((np.arange(values.shape[0]), -values)).astype(np.int64)


def load_catalog(session: Session) -> CatalogSnapshot:
    """Read products and popularity (current holders per product, overall and per segment).

    Where nobody holds anything yet, take-up events stand in so a fresh install still ranks.
    """
    products = [
        (r.product_id, r.name, r.category, r.risk_level, r.status)
        for r in session.execute(
            select(
                Product.product_id,
                Product.name,
                Product.category,
                Product.risk_level,
                Product.status,
            )
        )
    ]
    overall: dict[str, float] = {}
    by_segment: dict[str, dict[str, float]] = {}
    held = session.execute(
        select(Product.product_id, Customer.segment, func.count())
        .select_from(Holding)
        .join(Product, Product.id == Holding.product_pk)
        .join(Customer, Customer.id == Holding.customer_pk)
        .group_by(Product.product_id, Customer.segment)
    ).all()
    if not held:
        held = session.execute(
            select(Product.product_id, Customer.segment, func.count())
            .select_from(Interaction)
            .join(Product, Product.id == Interaction.product_pk)
            .join(Customer, Customer.id == Interaction.customer_pk)
            .group_by(Product.product_id, Customer.segment)
        ).all()
    for product_id, segment, count in held:
        overall[product_id] = overall.get(product_id, 0.0) + float(count)
        if segment is not None:
            seg = by_segment.setdefault(segment, {})
            seg[product_id] = seg.get(product_id, 0.0) + float(count)
    return CatalogSnapshot.build(products, overall, by_segment)
