"""Products similar to one product, through the same policy gate as every other list.

With a ``customer_id`` the customer's own gate applies (suitability, holdings, status). Without
one, nobody's risk class is known, so only active products no riskier than the product being
viewed are shown: the viewer has already chosen to look at that risk level, and nothing above it
is ever suggested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from app.services.errors import ProductNotFound
from app.services.profiles import Profile
from app.services.recommend import reasons as R
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.service import (
    Item,
    NothingToServe,
    RecommendationService,
    gate,
)


@dataclass(frozen=True)
class SimilarProducts:
    product_id: str
    customer_id: str | None
    strategy: str
    model_version: str | None
    served_from: str
    degraded: bool
    items: list[Item]


def _anonymous_allowed(catalog: CatalogSnapshot, anchor: int) -> np.ndarray:
    levels = catalog.risk_level
    return catalog.active & (levels >= 1) & (levels <= max(int(levels[anchor]), 1))


def similar_products(
    service: RecommendationService,
    product_id: str,
    k: int,
    *,
    customer_id: str | None = None,
    profile: Profile | None = None,
    degraded: bool = False,
) -> SimilarProducts:
    """Up to ``k`` products similar to ``product_id``, allowed for the viewer."""
    catalog: CatalogSnapshot | None = getattr(service.catalog, "current", None)
    if catalog is None:
        raise NothingToServe("no product catalogue is loaded")
    anchor = catalog.index.get(product_id)
    if anchor is None:
        raise ProductNotFound(f"no product with id {product_id!r}")
    if customer_id is not None:
        exclude_held = True
        allowed = gate(profile, catalog, datetime.now(UTC), exclude_held=exclude_held).allowed
    else:
        allowed = _anonymous_allowed(catalog, anchor)
    allowed = allowed.copy()
    allowed[anchor] = False

    chosen: list[tuple[int, float, str]] = []
    strategy, version, served_from = "popularity", None, "fallback"
    loaded = service.models.choose(None, service.settings.default_strategy)
    if loaded is not None:
        mapping = loaded.catalog_positions(catalog.version, catalog.index)
        model_anchor = np.flatnonzero(mapping == anchor)
        if model_anchor.size:
            known = mapping >= 0
            model_allowed = np.zeros(mapping.shape[0], dtype=bool)
            model_allowed[known] = allowed[mapping[known]]
            try:
                idx, sc = loaded.model.similar_products(model_anchor[:1], k, allowed=model_allowed)
            except Exception:  # a broken model must not fail the request
                idx, sc = np.full((1, 0), -1), np.zeros((1, 0))
            for i, s in zip(idx[0].tolist(), sc[0].tolist(), strict=True):
                if i >= 0 and np.isfinite(s):
                    chosen.append((int(mapping[i]), float(s), R.SIMILAR))
            if chosen:
                strategy, version, served_from = loaded.strategy, loaded.version, "live"
    taken = {p for p, _, _ in chosen}
    same_category = catalog.category_codes == catalog.category_codes[anchor]
    for mask in (same_category, np.ones_like(same_category)):
        if len(chosen) >= k:
            break
        order = catalog.popular_order
        for pos in order[allowed[order] & mask[order]].tolist():
            if len(chosen) >= k:
                break
            if pos not in taken:
                taken.add(pos)
                chosen.append((pos, float(catalog.popularity[pos]), R.POPULAR))
    items = [
        Item(
            pos,
            str(catalog.product_ids[pos]),
            catalog.names[pos],
            catalog.categories[pos],
            rank,
            round(score, 6),
            [R.reason(code)],
        )
        for rank, (pos, score, code) in enumerate(chosen[:k], start=1)
    ]
    return SimilarProducts(
        product_id,
        customer_id,
        strategy,
        version,
        served_from,
        degraded or (customer_id is not None and profile is None),
        items,
    )
