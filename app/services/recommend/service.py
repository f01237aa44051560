"""The recommendation flow: candidates -> policy gate -> caps, promotions, backfill -> reasons.

Everything here runs on in-memory state (catalogue snapshot, cached profile, loaded models), so
a request costs no database round trip. Whatever source produced the candidates, the final list
is built only from products the policy gate allows (:func:`gate`), and it is filled to ``k`` from
popularity when the source ran short.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from app.services.model_store import NO_BIAS as _NO_BIAS
from app.services.model_store import LoadedModel, ModelStore
from app.services.profiles import Profile
from app.services.recommend import candidates as C
from app.services.recommend import reasons as R
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.kernel import live_list, round6
from app.services.recommend.pools import (
    FROM_CANDIDATES,
    FROM_POPULAR,
    FROM_SEGMENT,
    Pools,
    build_pools,
)
from app.services.recommend.promotions import Promotion, PromotionBook
from app.services.recommend.removals import (
    explain_blocked,
    head_removals,
    policy_version,
    removed_products,
    skipped_by_cap,
)
from app.settings import Settings
from recommenders.errors import ColdStartUnsupported
from recommenders.policy import (
    UNASSESSED,
    personalisation_allowed,
    select_with_category_cap,
)

log = logging.getLogger(__name__)


class NothingToServe(Exception):
    """No catalogue is loaded, so not even a fallback can answer."""


@dataclass(frozen=True, slots=True)
class RecommendRequest:
    k: int = 10
    channel: str | None = None
    placement: str | None = None
    explain: bool = True
    strategy: str | None = None  # admin override


class Item(NamedTuple):
    """One served item (a tuple: built ten times per request on the hot path)."""

    position: int
    product_id: str
    name: str
    category: str
    rank: int
    score: float
    reasons: list[R.Reason]


@dataclass(slots=True)
class Recommendation:
    recommendation_id: str
    customer_id: str
    strategy: str
    model_version: str | None
    served_from: str
    degraded: bool
    items: list[Item]
    served_at: datetime
    experiment: str | None = None
    variant: str | None = None
    notes: dict[str, object] = field(default_factory=dict)
    # (product_id, rule) for products the rules kept off this list (see _removed), and what
    # the list rests on: "personalised", "non_personalised" (no consent) or "fail_closed".
    removed: list[tuple[str, str]] = field(default_factory=list)
    basis: str = "personalised"
    risk_class: int = 0  # the effective class the gate used (0: no valid assessment)


@dataclass(frozen=True, slots=True)
class Gate:
    """What the policy gate decided for one customer on one request."""

    allowed: np.ndarray  # bool per catalogue position
    personalised: bool
    risk_class: int
    penalty: np.ndarray | None = None  # float32: 0 where allowed, -inf elsewhere (cached gates)


def gate(
    profile: Profile | None,
    catalog: CatalogSnapshot,
    now: datetime,
    *,
    exclude_held: bool,
) -> Gate:
    """The policy gate for one request. ``profile=None`` (unreadable) fails closed: R1 only,
    non-personalised, nothing known to be held."""
    if profile is None:
        risk, consent, held = UNASSESSED, False, frozenset[str]()
    else:
        risk = profile.effective_risk_class(now)
        consent = profile.consent
        held = profile.held
    # Row ``risk`` of the snapshot's allowed_mask table, then the customer's holdings.
    allowed = catalog.allowed_by_class[risk].copy()
    if exclude_held and held:
        allowed[catalog.positions(held)] = False
    return Gate(allowed, personalisation_allowed(consent), risk)


class _Ids:
    """Recommendation IDs: 32 hex digits, a millisecond timestamp (48 bits) then 80 random bits,
    the layout of a UUIDv7, without a system call per request.

    Time first keeps the decision log's unique index on the ID append-mostly: each insert lands
    at the index's right edge instead of on a random page, so a write batch dirties a few pages
    rather than one per row. 80 random bits per millisecond per process keep IDs unique.
    ``os.urandom`` releases the GIL, and on a busy server getting it back can cost far more
    than the call; a per-process generator seeded from ``os.urandom`` (re-seeded in a forked
    child) gives the same uniqueness. IDs are drawn 256 at a time (one timestamp) and handed
    out one by one (a list pop is atomic, so threads never share one). They correlate log
    records; they are not secrets.
    """

    _BATCH = 256

    def __init__(self) -> None:
        self._reseed()
        # A forked child must not hand out its parent's IDs: re-seeded by a fork hook, not by a
        # process-id check per request (getpid is a system call).
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._random = random.Random(os.urandom(32))
        self._ready: list[str] = []

    def new(self) -> str:
        try:
            return self._ready.pop()
        except IndexError:
            stamp = "%012x" % (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF)
            text = self._random.randbytes(10 * self._BATCH).hex()
            fresh = [stamp + text[i : i + 20] for i in range(0, len(text), 20)]
            self._ready.extend(fresh[1:])
            return fresh[0]


_ids = _Ids()


@dataclass(frozen=True, slots=True)
class _Tables:
    """What the compiled list assembly needs of one catalogue snapshot (built once per snapshot)."""

    version: int
    categories: np.ndarray  # int64 category code per position
    n_cats: int
    pools: Pools
    no_offset: np.ndarray  # float32 -0.0 per position: scores that need no offset added

    @classmethod
    def of(cls, catalog: CatalogSnapshot) -> _Tables:
        categories = np.asarray(catalog.category_list, dtype=np.int64)
        n_cats = int(categories.max()) + 1 if categories.size else 1
        no_offset = np.full(catalog.size, -0.0, dtype=np.float32)
        no_offset.flags.writeable = False
        return cls(catalog.version, categories, n_cats, build_pools(catalog), no_offset)

    def pool(self, segment: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The backfill pool's ``(order, scores, source)`` arrays for a customer's segment."""
        pool = self.pools.pools[self.pools.index_of(segment)]
        return pool.order, pool.scores, pool.source


# The kernel's source codes index the reason sets (RecommendationService._reasons_by_source).
assert (FROM_CANDIDATES, FROM_SEGMENT, FROM_POPULAR) == (0, 1, 2)
_new_item = tuple.__new__  # builds an Item from its fields without a Python-level call
_POPULAR_IN_SEGMENT = [R.reason(R.POPULAR_IN_SEGMENT)]
_POPULAR = [R.reason(R.POPULAR)]


class RecommendationService:
    """Builds recommendation lists from the in-memory serving state."""

    def __init__(
        self,
        settings: Settings,
        catalog: object,  # CatalogHolder-like: has ``current``
        models: ModelStore,
        promotions: PromotionBook,
        precomputed: C.PrecomputedSource | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.models = models
        self.promotions = promotions
        self.precomputed: C.PrecomputedSource = precomputed or C.NoPrecomputed()
        # customer -> (profile, catalogue version, exclude_held, risk class, gate): the gate row
        # is rebuilt only when one of those changes (a changed profile is a new object).
        self._gates: dict[str, tuple[Profile, int, bool, int, Gate]] = {}
        self._gate_cache_size = max(int(settings.profile_cache_size), 1)
        # customer -> (gate, k, the gate's removals from the popularity head): see _head_removals.
        self._heads: dict[str, tuple[Gate, int, list[tuple[int, str]]]] = {}
        self.policy_version = policy_version(settings)
        self.compiled_lists = bool(settings.compiled_lists)
        self._tables: _Tables | None = None
        self._reason_sets: dict[
            tuple[str, str, bool, bool], tuple[list[R.Reason], list[R.Reason], list[R.Reason]]
        ] = {}
        self._hold_weight = float(
            max(
                (settings.event_weights.get(t, 0.0) for t in settings.holding_event_types),
                default=1.0,
            )
        )

    def ready(self) -> tuple[bool, dict[str, object]]:
        """Ready when a catalogue is loaded (then at least the fallback can serve)."""
        snapshot = getattr(self.catalog, "current", None)
        detail: dict[str, object] = {"models": self.models.strategies}
        if snapshot is None:
            return False, {**detail, "reason": "no catalogue loaded"}
        return True, {**detail, "products": snapshot.size}

    def recommend(
        self,
        customer_id: str,
        profile: Profile | None,
        request: RecommendRequest,
        *,
        degraded: bool = False,
        now: datetime | None = None,
    ) -> Recommendation:
        """The list for one customer. ``profile=None`` means unreadable: fail closed."""
        catalog: CatalogSnapshot | None = getattr(self.catalog, "current", None)
        if catalog is None:
            raise NothingToServe("no product catalogue is loaded")
        now = now or datetime.now(UTC)
        k = request.k
        exclude_held = request.placement not in self.settings.placements_showing_held
        decision = self._gate(customer_id, profile, catalog, now, exclude_held)
        degraded = degraded or profile is None
        limit = k * 3 + 5
        compiled = self._compiled(customer_id, profile, decision, catalog, request, limit, now)
        blocked: list[tuple[int, str]] = []
        model_version: str | None
        if compiled is not None:
            items, capped, loaded = compiled
            strategy, model_version, served_from = loaded.strategy, loaded.version, "live"
        else:
            cands = self._candidates(customer_id, profile, decision, catalog, request, limit)
            items, dropped, capped = self._assemble_parts(
                cands, decision, catalog, request, profile, now
            )
            listed = cands.extra.get("listed")
            if listed:  # a batch list: what the gate drops from it now was removed from this list
                dropped = catalog.positions(listed)  # type: ignore[arg-type]
                dropped = dropped[~decision.allowed[dropped]]
            if dropped.size:
                blocked = explain_blocked(decision, catalog, profile, exclude_held, dropped)
            strategy, model_version, served_from = (
                cands.strategy,
                cands.model_version,
                cands.served_from,
            )
            degraded = degraded or bool(cands.extra.get("degraded"))
        removed = removed_products(
            catalog,
            blocked,
            self._head_removals(customer_id, decision, catalog, profile, exclude_held, k),
            capped,
            items,
        )
        return Recommendation(
            recommendation_id=_ids.new(),
            customer_id=customer_id,
            strategy=strategy,
            model_version=model_version,
            served_from=served_from,
            degraded=degraded,
            items=items,
            served_at=now,
            removed=removed,
            risk_class=decision.risk_class,
            basis=(
                "fail_closed"
                if profile is None
                else ("personalised" if decision.personalised else "non_personalised")
            ),
        )

    def _gate(
        self,
        customer_id: str,
        profile: Profile | None,
        catalog: CatalogSnapshot,
        now: datetime,
        exclude_held: bool,
    ) -> Gate:
        """:func:`gate`, cached per customer while profile, catalogue and risk class hold."""
        if profile is None:
            return gate(None, catalog, now, exclude_held=exclude_held)
        risk = profile.effective_risk_class(now)
        hit = self._gates.get(customer_id)
        if (
            hit is not None
            and hit[0] is profile
            and hit[1] == catalog.version
            and hit[2] == exclude_held
            and hit[3] == risk
        ):
            return hit[4]
        fresh = gate(profile, catalog, now, exclude_held=exclude_held)
        allowed = fresh.allowed
        allowed.flags.writeable = False  # shared by later requests: nobody may change it
        penalty = np.where(allowed, np.float32(0.0), C.NEG_INF).astype(np.float32)
        penalty.flags.writeable = False
        decision = Gate(allowed, fresh.personalised, fresh.risk_class, penalty)
        if len(self._gates) >= self._gate_cache_size:
            self._gates.clear()
        self._gates[customer_id] = (profile, catalog.version, exclude_held, risk, decision)
        return decision

    def _head_removals(
        self,
        customer_id: str,
        decision: Gate,
        catalog: CatalogSnapshot,
        profile: Profile | None,
        exclude_held: bool,
        k: int,
    ) -> list[tuple[int, str]]:
        """:func:`head_removals`, kept while the customer's cached gate object is the same."""
        if profile is None:
            return head_removals(decision, catalog, profile, exclude_held, k)
        hit = self._heads.get(customer_id)
        if hit is not None and hit[0] is decision and hit[1] == k:
            return hit[2]
        fresh = head_removals(decision, catalog, profile, exclude_held, k)
        if len(self._heads) >= self._gate_cache_size:
            self._heads.clear()
        self._heads[customer_id] = (decision, k, fresh)
        return fresh

    # ---- the compiled path -----------------------------------------------------------------
    def _compiled(
        self,
        customer_id: str,
        profile: Profile | None,
        decision: Gate,
        catalog: CatalogSnapshot,
        request: RecommendRequest,
        limit: int,
        now: datetime,
    ) -> tuple[list[Item], list[int], LoadedModel] | None:
        """The list of a personalised customer a loaded model knows (or has folded in before),
        built by the compiled pass the batch job runs (:mod:`app.services.recommend.kernel`);
        ``None`` leaves the request to the general path (precomputed lists, a first cold start,
        the fusion's per-item reasons, campaigns, anything unusual), which gives the same list
        where both apply."""
        if (
            not self.compiled_lists
            or profile is None
            or not decision.personalised
            or decision.penalty is None
        ):
            return None
        if self.precomputed.lookup(customer_id, request.strategy or self.settings.default_strategy):
            return None
        loaded = self.models.choose(request.strategy, self.settings.default_strategy)
        if loaded is None or loaded.algorithm == "fusion":
            return None
        if self.promotions.active(request.placement, now):
            return None
        # The scores as ``(raw + offset) + bias``, added (with the gate's penalty) by the
        # kernel; a factor model gives its parts, any other model its finished scores.
        offset: np.ndarray | None = None
        bias = _NO_BIAS
        position = loaded.customer_position(profile.customer_id)
        if position >= 0:
            try:
                parts = loaded.score_parts(position, catalog.version, catalog.index, catalog.size)
                if parts is None:
                    raw = loaded.score_catalog(
                        position, catalog.version, catalog.index, catalog.size
                    )
                else:
                    raw, offset, bias = parts
            except Exception:
                return None  # the general path logs the failure and falls back
        else:
            # A customer the model folded in earlier (the general path keeps those scores while
            # the profile object and the catalogue stay the same); the first request goes there.
            cached = loaded.cold_scores.get(profile.customer_id)
            if cached is None or cached[0] != catalog.version or cached[1] is not profile:
                return None
            raw = cached[2]
        tables = self._tables
        if tables is None or tables.version != catalog.version:
            tables = self._tables = _Tables.of(catalog)
        cap = self.settings.category_cap
        k = request.k
        out = np.empty(2 * k + catalog.size, dtype=np.int64)
        values = np.empty(k, dtype=np.float64)
        got, n_capped, rounded = live_list(
            raw,
            tables.no_offset if offset is None else offset,
            bias,
            decision.penalty,
            decision.allowed,
            tables.categories,
            tables.n_cats,
            k,
            -1 if cap is None else cap,
            min(limit, catalog.size),
            *tables.pool(profile.segment),
            out,
            values,
        )
        if got < 0:  # never expected: the gate has the last word
            log.error("compiled list assembly proposed a product the gate blocks")
            return None
        # Reasons by source (model, segment pool, overall pool); items built without a Python
        # call each (they are tuples), scores rounded by the kernel.
        by_source = self._reasons_by_source(loaded, profile.segment is None, request.explain)
        head = out[: 2 * k].tolist()
        positions = head[:got]
        ids, names, categories = catalog.product_ids, catalog.names, catalog.categories
        items: list[Item] = [
            _new_item(Item, fields)
            for fields in zip(
                positions,
                [ids[p] for p in positions],
                [names[p] for p in positions],
                [categories[p] for p in positions],
                range(1, got + 1),
                values[:got].tolist() if rounded else round6(values[:got]),
                [by_source[s] for s in head[k : k + got]],
                strict=True,
            )
        ]
        capped = out[2 * k : 2 * k + n_capped].tolist() if n_capped else []
        return items, capped, loaded

    def _reasons_by_source(
        self, loaded: LoadedModel, no_segment: bool, explain: bool
    ) -> tuple[list[R.Reason], list[R.Reason], list[R.Reason]]:
        """Item reasons indexed by the kernel's source code, kept per model and request kind."""
        key = (loaded.strategy, loaded.version, no_segment, explain)
        hit = self._reason_sets.get(key)
        if hit is None:
            sets = [C.base_reasons(loaded, no_segment), _POPULAR_IN_SEGMENT, _POPULAR]
            if not explain:
                sets = [[r for r in rs if r["code"] in R.DISCLOSURES] for rs in sets]
            if len(self._reason_sets) > 64:
                self._reason_sets.clear()
            hit = self._reason_sets[key] = (sets[0], sets[1], sets[2])
        return hit

    # ---- candidates ------------------------------------------------------------------------
    def _candidates(
        self,
        customer_id: str,
        profile: Profile | None,
        decision: Gate,
        catalog: CatalogSnapshot,
        request: RecommendRequest,
        limit: int,
    ) -> C.Candidates:
        segment = profile.segment if profile is not None else None
        if profile is None or not decision.personalised:
            # Non-personalised: overall popularity only (a segment is personal data too).
            return C.popular(catalog, decision.allowed, None, limit)
        strategy = request.strategy or self.settings.default_strategy
        entry = self.precomputed.lookup(customer_id, strategy)
        if entry is not None:
            loaded = self.models.get(entry.strategy)
            if loaded is None or loaded.version == entry.model_version:
                cands = C.from_precomputed(entry, catalog, decision.allowed)
                cands.extra["listed"] = entry.product_ids  # the batch's ranking, for removals
                return cands
        loaded = self.models.choose(request.strategy, self.settings.default_strategy)
        tried: set[str] = set()
        if loaded is not None:
            tried.add(loaded.strategy)
            try:
                return C.live(
                    loaded,
                    profile,
                    catalog,
                    decision.allowed,
                    limit,
                    self._hold_weight,
                    decision.penalty,
                )
            except ColdStartUnsupported:
                pass
            except Exception:  # a broken model must not fail the request: fall back
                log.exception("live scoring failed for strategy %s", loaded.strategy)
            # Cold-start routing: a customer the model never saw goes to a model that can.
            for other in self.models.cold_candidates():
                if other.strategy in tried:
                    continue
                tried.add(other.strategy)
                try:
                    return C.live(
                        other,
                        profile,
                        catalog,
                        decision.allowed,
                        limit,
                        self._hold_weight,
                        decision.penalty,
                    )
                except ColdStartUnsupported:
                    continue
                except Exception:
                    log.exception("cold-start scoring failed for strategy %s", other.strategy)
        return C.popular(catalog, decision.allowed, segment, limit)

    # ---- caps, promotions, backfill, reasons ----------------------------------------------
    def _assemble(
        self,
        cands: C.Candidates,
        decision: Gate,
        catalog: CatalogSnapshot,
        request: RecommendRequest,
        profile: Profile | None,
        now: datetime,
    ) -> list[Item]:
        """The served items (what batch precompute stores), without the removal accounting."""
        return self._assemble_parts(cands, decision, catalog, request, profile, now)[0]

    def _assemble_parts(
        self,
        cands: C.Candidates,
        decision: Gate,
        catalog: CatalogSnapshot,
        request: RecommendRequest,
        profile: Profile | None,
        now: datetime,
    ) -> tuple[list[Item], np.ndarray, list[int]]:
        """Items, candidates the re-applied gate dropped, candidates the category cap skipped."""
        k = request.k
        cap = self.settings.category_cap
        allowed = decision.allowed
        # Re-apply the gate whatever the source said: nothing unsuitable passes this line.
        keep = allowed[cands.positions]
        positions = cands.positions[keep]
        scores = cands.scores[keep]
        order: list[int] = positions.tolist()
        score_of = dict(zip(order, scores.tolist(), strict=True))
        reasons_of: dict[int, list[R.Reason]] = {}
        if cands.reasons is not None:
            why = [r for r, ok in zip(cands.reasons, keep.tolist(), strict=True) if ok]
            reasons_of = dict(zip(order, why, strict=True))
        default = cands.default_reasons

        promos = self.promotions.active(request.placement, now)
        candidate_set = set(order)
        promoted: set[int] = set()
        pins: list[tuple[int, int]] = []
        if promos:
            ranked, pins, promoted = self._promote(
                promos, positions, scores, score_of, catalog, allowed
            )
            order = ranked.tolist()
        pinned = [p for _, p in pins]
        chosen = select_with_category_cap(order, catalog.category_list, k, cap, already=pinned)
        capped = skipped_by_cap(order, chosen, pinned, k) if cap is not None else []
        if len(pinned) + len(chosen) < k:
            chosen += self._backfill(
                catalog, allowed, profile, decision, k, cap, pinned + chosen, reasons_of, score_of
            )
        final = self._place_pins(chosen, pins, k) if pins else chosen
        items = []
        disclosure_only = not request.explain
        for rank, pos in enumerate(final, start=1):
            if not decision.personalised:
                reasons = [R.reason(R.NON_PERSONALISED)]
            else:
                reasons = reasons_of.get(pos, default)
            if pos in promoted:
                # A campaign item the source never proposed is there only as a promotion.
                base = reasons if pos in candidate_set or pos in reasons_of else []
                reasons = [*base, R.reason(R.PROMOTION)]
            if disclosure_only:
                reasons = [r for r in reasons if r["code"] in R.DISCLOSURES]
            items.append(
                Item(
                    pos,
                    catalog.product_ids[pos],
                    catalog.names[pos],
                    catalog.categories[pos],
                    rank,
                    round(score_of.get(pos, 0.0), 6),
                    reasons,
                )
            )
        return items, cands.positions[~keep], capped

    @staticmethod
    def _promote(
        promos: list[Promotion],
        positions: np.ndarray,
        scores: np.ndarray,
        score_of: dict[int, float],
        catalog: CatalogSnapshot,
        allowed: np.ndarray,
    ) -> tuple[np.ndarray, list[tuple[int, int]], set[int]]:
        finite = scores[np.isfinite(scores)]
        lo = float(finite.min()) if finite.size else 0.0
        spread = float(finite.max() - lo) if finite.size > 1 else 1.0
        spread = spread if spread > 0 else 1.0
        promoted: set[int] = set()
        pins: dict[int, int] = {}
        for promo in promos:
            pos = catalog.index.get(promo.product_id)
            if pos is None or not allowed[pos]:
                continue  # a campaign never overrides the policy gate
            if promo.boost > 0:
                score_of[pos] = score_of.get(pos, lo) + promo.boost * spread
                promoted.add(pos)
            if promo.pin_rank is not None and pos not in pins:
                pins[pos] = promo.pin_rank
                promoted.add(pos)
        candidates = positions.tolist()
        candidates += [p for p in promoted if p not in set(candidates)]
        ranked = sorted(candidates, key=lambda p: (-score_of.get(p, lo), p))
        pin_list = sorted(((rank, pos) for pos, rank in pins.items()))
        return np.asarray(ranked, dtype=np.int64), pin_list, promoted

    @staticmethod
    def _place_pins(chosen: list[int], pins: list[tuple[int, int]], k: int) -> list[int]:
        final = [p for p in chosen if p not in {pos for _, pos in pins}]
        for rank, pos in pins:
            final.insert(min(rank - 1, len(final)), pos)
        return final[:k]

    @staticmethod
    def _backfill(
        catalog: CatalogSnapshot,
        allowed: np.ndarray,
        profile: Profile | None,
        decision: Gate,
        k: int,
        cap: int | None,
        taken: list[int],
        reasons_of: dict[int, list[R.Reason]],
        score_of: dict[int, float],
    ) -> list[int]:
        """Fill to ``k`` from popularity, within caps first and then without them."""
        segment = profile.segment if (profile is not None and decision.personalised) else None
        pool = C.popular(catalog, allowed, segment, catalog.size)
        ranked = pool.positions.tolist()
        added = select_with_category_cap(ranked, catalog.category_list, k, cap, already=taken)
        if len(taken) + len(added) < k and cap is not None:
            added += select_with_category_cap(
                ranked, catalog.category_list, k, None, already=taken + added
            )
        fill = dict(zip(ranked, range(len(ranked)), strict=True))
        for pos in added:
            if pos not in score_of:  # candidates keep their own score and reasons
                score_of[pos] = float(pool.scores[fill[pos]])
                reasons_of[pos] = pool.reasons[fill[pos]] if pool.reasons else []
        return added
