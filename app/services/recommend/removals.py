"""Removal accounting for decision records: which products the rules kept off a list, and why.

Cheap by construction (tens of microseconds a request): it looks only at a handful of positions
and explains them with the vectorised rule explanation of :mod:`recommenders.policy`.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np

from app.services.profiles import Profile
from app.services.recommend.catalog import CatalogSnapshot
from app.settings import Settings
from recommenders.policy import REMOVAL_RULES, RULE_CATEGORY_CAP, RULES_VERSION, removal_codes

if TYPE_CHECKING:
    from app.services.recommend.service import Gate, Item


def explain_blocked(
    decision: Gate,
    catalog: CatalogSnapshot,
    profile: Profile | None,
    exclude_held: bool,
    positions: np.ndarray,
) -> list[tuple[int, str]]:
    """``(position, rule)`` for each of ``positions`` the gate blocks, with the first rule
    broken (:func:`~recommenders.policy.removal_codes`); allowed positions are left out."""
    # -1 is a source's padding for a product the catalogue lacks (never served either).
    positions = positions[positions >= 0]
    if not positions.size:
        return []
    where = positions.tolist()
    ids = catalog.product_ids
    held = profile.held if profile is not None else frozenset[str]()
    held_mask = np.fromiter((ids[p] in held for p in where), bool, len(where))
    codes = removal_codes(
        decision.risk_class,
        catalog.risk_level[positions],
        catalog.active[positions],
        held_mask,
        exclude_held=exclude_held,
    )
    return [(pos, REMOVAL_RULES[c]) for pos, c in zip(where, codes.tolist(), strict=True) if c]


def head_removals(
    decision: Gate,
    catalog: CatalogSnapshot,
    profile: Profile | None,
    exclude_held: bool,
    k: int,
) -> list[tuple[int, str]]:
    """The gate's removals among the top ``k`` of the catalogue's popularity ranking.

    They depend only on the gate decision and ``k``, so the service keeps them with its cached
    gate; docs/decisions.md says why the popularity head stands in for a model's unfiltered
    ranking (the gate runs inside scoring, so that ranking never exists).
    """
    head = catalog.popular_order[:k]
    return explain_blocked(decision, catalog, profile, exclude_held, head[~decision.allowed[head]])


def removed_products(
    catalog: CatalogSnapshot,
    dropped: list[tuple[int, str]],
    head: list[tuple[int, str]],
    capped: list[int],
    items: list[Item],
) -> list[tuple[str, str]]:
    """``(product_id, rule)`` for the products the rules kept off this list.

    Considered, in this order: the candidates the gate dropped from the source's own list (a
    precomputed list gone stale), the gate's removals from the popularity head
    (:func:`head_removals`), and the candidates ranked above the last served one that the
    category cap skipped. Each product is named once, with the first rule in
    :data:`~recommenders.policy.REMOVAL_RULES` order (``category_cap`` last); served products
    never appear (the gate's are never served, capped ones may be backfilled).
    """
    rules = dict(dropped)
    for pos, rule in head:
        rules.setdefault(pos, rule)
    if capped:
        served = {item.position for item in items}
        for pos in capped:
            if pos not in served:
                rules.setdefault(pos, RULE_CATEGORY_CAP)
    ids = catalog.product_ids
    return [(ids[pos], rule) for pos, rule in rules.items()]


def skipped_by_cap(order: list[int], chosen: list[int], pinned: list[int], k: int) -> list[int]:
    """Candidates the category cap passed over: those ranked above the last one chosen, or all
    of them when the cap left the list short (the selection skips nothing else)."""
    if len(pinned) + len(chosen) >= k:
        if not chosen:
            return []
        order = order[: order.index(chosen[-1])]
    taken = set(chosen)
    taken.update(pinned)
    return [p for p in order if p >= 0 and p not in taken]


def policy_version(settings: Settings) -> str:
    """A short id of the rules in force: the rule-set version and the settings that tune it.

    Two replicas with the same id apply the same policy; any change to the rules or to these
    settings gives a new id, so a decision record says which policy made it.
    """
    spec = {
        "rules": RULES_VERSION,
        "category_cap": settings.category_cap,
        "placements_showing_held": sorted(settings.placements_showing_held),
        "risk_assessment_validity_months": settings.risk_assessment_validity_months,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return f"{RULES_VERSION}+{digest[:10]}"
