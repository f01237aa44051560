"""Candidate sources: a fresh precomputed list, live scoring of an in-memory model, or popularity.

Every source returns :class:`Candidates` over catalogue positions, already restricted to what
the policy gate allows (the ranking step re-applies the gate anyway, so a source can never leak
a product through). Reasons are attached per item where the source knows them (the fusion names
the members that contributed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from app.services.model_store import LoadedModel
from app.services.profiles import Profile
from app.services.recommend import reasons as R
from app.services.recommend.catalog import CatalogSnapshot
from recommenders.errors import ColdStartUnsupported

NEG_INF = np.float32(-np.inf)


@dataclass(frozen=True)
class Candidates:
    """Ranked candidate positions (best first), their scores and their reasons."""

    positions: np.ndarray  # int64 catalogue positions, best first
    scores: np.ndarray  # float32, same length
    reasons: list[list[R.Reason]] | None  # per item, or None: ``default_reasons`` for all
    strategy: str
    model_version: str | None
    served_from: str  # precomputed | live | fallback
    default_reasons: list[R.Reason] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PrecomputedList:
    """One customer's list from a complete precompute batch."""

    strategy: str
    model_version: str
    product_ids: tuple[str, ...]
    scores: tuple[float, ...]
    reason_codes: tuple[tuple[str, ...], ...] | None = None


class PrecomputedSource(Protocol):
    """Where complete precompute batches are read from (kept off the hot path by its owner)."""

    def lookup(self, customer_id: str, strategy: str) -> PrecomputedList | None: ...


class NoPrecomputed:
    """The default source: no batch has been published."""

    def lookup(self, customer_id: str, strategy: str) -> PrecomputedList | None:
        return None


def _best(scores: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the ``limit`` best finite scores, best first, ties by position.

    The candidates of :mod:`app.services.recommend.kernel` (what the job and the compiled live
    path take): NaN and infinite scores are never candidates, and among equal scores at the
    line the earlier positions are in. A partition, then a sort of the head only.
    """
    size = scores.shape[0]
    if size <= limit:
        top = np.arange(size)
        values = scores
        finite = np.isfinite(values)
        if not finite.all():
            top, values = top[finite], values[finite]
        return top[np.lexsort((top, -values))]
    top = np.argpartition(scores, size - limit)[size - limit :]
    values = scores[top]
    finite = np.isfinite(values)
    if not finite.all():
        if np.isnan(values).any() or np.isposinf(values).any():
            # They rank above every number in a partition: take them out and choose again.
            return _best(np.where(np.isfinite(scores), scores, NEG_INF), limit)
        # Fewer finite scores than ``limit``: the partition holds all of them.
        top, values = top[finite], values[finite]
    elif np.count_nonzero(scores >= (line := values.min())) > limit:
        # Equal scores straddle the line: the partition chose among them at random.
        above = np.flatnonzero(scores > line)
        tied = np.flatnonzero(scores == line)[: limit - above.size]
        top = np.concatenate((above, tied))
        values = scores[top]
    return top[np.lexsort((top, -values))]


def from_precomputed(
    entry: PrecomputedList, catalog: CatalogSnapshot, allowed: np.ndarray
) -> Candidates:
    positions, scores, why = [], [], []
    for i, pid in enumerate(entry.product_ids):
        pos = catalog.index.get(pid)
        if pos is None or not allowed[pos]:
            continue
        positions.append(pos)
        scores.append(entry.scores[i])
        codes = entry.reason_codes[i] if entry.reason_codes else ()
        why.append([R.reason(c) for c in codes if c in R.TEMPLATES and c not in R.DISCLOSURES])
    return Candidates(
        np.asarray(positions, dtype=np.int64),
        np.asarray(scores, dtype=np.float32),
        why,
        entry.strategy,
        entry.model_version,
        "precomputed",
    )


def _cold_inputs(
    loaded: LoadedModel, profile: Profile, hold_weight: float
) -> tuple[sp.csr_matrix | None, sp.csr_matrix | None]:
    inputs = loaded.cold_inputs
    hist = feats = None
    if "history" in inputs:
        cols = loaded.product_index_of(profile.held)
        hist = sp.csr_matrix(
            (np.full(cols.size, hold_weight, np.float32), (np.zeros(cols.size, np.int64), cols)),
            shape=(1, loaded.product_external.shape[0]),
        )
    context = getattr(loaded.model, "context", None)
    if "features" in inputs and context is not None:
        feats = context.customer_encoder.encode(pd.DataFrame([profile.attributes]))
    if hist is not None and feats is None and hist.nnz == 0 and "features" in inputs:
        hist = None
    if hist is None and feats is None:
        raise ColdStartUnsupported(f"{loaded.algorithm} has nothing to score this customer by")
    return hist, feats


def live(
    loaded: LoadedModel,
    profile: Profile,
    catalog: CatalogSnapshot,
    allowed: np.ndarray,
    limit: int,
    hold_weight: float = 8.0,
    penalty: np.ndarray | None = None,
) -> Candidates:
    """Score one customer with an in-memory model. Raises ColdStartUnsupported when it cannot.

    ``penalty`` (0 where allowed, -inf elsewhere) is the gate as one addition; without it the
    gate is applied from ``allowed``.
    """
    mapping, model_idx, catalog_idx = loaded.catalog_view(catalog.version, catalog.index)
    position = loaded.customer_position(profile.customer_id)
    model = loaded.model
    if position >= 0 and loaded.algorithm == "fusion" and hasattr(model, "recommend_explained"):
        return _fusion_explained(loaded, position, mapping, allowed, limit)
    if position >= 0:
        scores = loaded.score_catalog(position, catalog.version, catalog.index, catalog.size)
    else:
        # Folding a new customer in is ~100x a known customer's cost: keep the result while
        # the profile object (replaced on any change) and the catalogue stay the same.
        key = (catalog.version, profile)
        cached = loaded.cold_scores.get(profile.customer_id)
        if cached is not None and cached[0] == key[0] and cached[1] is profile:
            scores = cached[2].copy()
        else:
            hist, feats = _cold_inputs(loaded, profile, hold_weight)
            row = model.score_cold(hist, feats)[0]
            scores = np.full(catalog.size, NEG_INF, dtype=np.float32)
            scores[catalog_idx] = row[model_idx]
            loaded.remember_cold(profile.customer_id, (catalog.version, profile, scores.copy()))
    # NaN scores are dropped by _best's finiteness check.
    if penalty is not None:
        scores += penalty
    else:
        scores[~allowed] = NEG_INF
    best = _best(scores, limit)
    return Candidates(
        best,
        scores[best],
        None,
        loaded.strategy,
        loaded.version,
        "live",
        default_reasons=base_reasons(loaded, profile.segment is None),
    )


def base_reasons(loaded: LoadedModel, no_segment: bool) -> list[R.Reason]:
    """The reasons a live model's own candidates carry (the fusion names its members; a
    segment-popularity model says plain "popular" to a customer without a segment)."""
    code = R.reason_for_algorithm(loaded.algorithm)
    if loaded.algorithm == "fusion":
        names = [str(n) for n in getattr(loaded.model, "member_names", ())]
        return R.fusion_reasons(names) or [R.reason(R.COLLABORATIVE)]
    if code == R.POPULAR_IN_SEGMENT and no_segment:
        return [R.reason(R.POPULAR)]
    return [R.reason(code)]


def _fusion_explained(
    loaded: LoadedModel, position: int, mapping: np.ndarray, allowed: np.ndarray, limit: int
) -> Candidates:
    """The fusion's own ranking with each item's contributing members named in its reasons."""
    known = mapping >= 0
    model_allowed = np.zeros(mapping.shape[0], dtype=bool)
    model_allowed[known] = allowed[mapping[known]]
    k = int(min(limit, mapping.shape[0]))
    explained = loaded.model.recommend_explained(np.asarray([position]), k, allowed=model_allowed)
    idx, sc, parts = explained.indices[0], explained.scores[0], explained.contributions[0]
    keep = (idx >= 0) & np.isfinite(sc)
    members = explained.members
    why = [
        R.fusion_reasons(members[m] for m in np.flatnonzero(row > 0)) or [R.reason(R.COLLABORATIVE)]
        for row in parts[keep]
    ]
    return Candidates(
        mapping[idx[keep]],
        sc[keep].astype(np.float32),
        why,
        loaded.strategy,
        loaded.version,
        "live",
    )


def popular(
    catalog: CatalogSnapshot, allowed: np.ndarray, segment: str | None, limit: int
) -> Candidates:
    """The fallback: popular in the customer's segment, then popular overall."""
    positions: list[int] = []
    why: list[list[R.Reason]] = []
    scores: list[float] = []
    seen: set[int] = set()
    lists = []
    if segment is not None and segment in catalog.segment_order:
        lists.append(
            (
                catalog.segment_order[segment],
                catalog.segment_popularity[segment],
                R.POPULAR_IN_SEGMENT,
            )
        )
    lists.append((catalog.popular_order, catalog.popularity, R.POPULAR))
    for order, values, code in lists:
        ok = order[allowed[order]]
        for pos in ok[: limit + len(seen)].tolist():
            if pos in seen:
                continue
            seen.add(pos)
            positions.append(pos)
            scores.append(float(values[pos]))
            why.append([R.reason(code)])
            if len(positions) >= limit:
                break
        if len(positions) >= limit:
            break
    return Candidates(
        np.asarray(positions, dtype=np.int64),
        np.asarray(scores, dtype=np.float32),
        why,
        "popularity",
        None,
        "fallback",
    )
