"""Score a block of customers: model scores, the vectorised policy gate, top candidates by
``argpartition``, then the serving code's own caps, backfill and reasons for every customer.

The list a customer gets here is the list the live API would build: the candidates come from the
same scores and the same gate (in its block form), and the final list is assembled by
:class:`~app.services.recommend.service.RecommendationService` itself, not by a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from app.jobs.precompute.population import Population
from app.services.model_store import LoadedModel
from app.services.recommend import candidates as C
from app.services.recommend import reasons as R
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.service import Gate, RecommendationService, RecommendRequest
from recommenders.base import VectorModel
from recommenders.policy import allowed_mask

NEG_INF = np.float32(-np.inf)

# Outcomes counted in the run summary (one per customer).
PERSONALISED = "personalised"
NON_PERSONALISED = "non_personalised"
COLD_START = "cold_start"
FALLBACK = "fallback"
NO_ELIGIBLE_PRODUCT = "no_eligible_product"

Row = tuple[str, str, int, str, float, str]  # batch_id, customer_id, rank, product_id, score, codes


def candidate_limit(k: int) -> int:
    """How many candidates the service ranks before caps for a list of ``k`` (as it does live)."""
    return k * 3 + 5


@dataclass(frozen=True)
class FactorLayout:
    """A factor model's product side laid out in catalogue order (as the live fast path does)."""

    factors: np.ndarray  # float32 (catalogue size x f)
    bias: np.ndarray | None
    unknown: np.ndarray  # bool: catalogue products the model never saw


def factor_layout(loaded: LoadedModel, catalog: CatalogSnapshot) -> FactorLayout | None:
    model = loaded.model
    if not isinstance(model, VectorModel):
        return None
    _, model_idx, catalog_idx = loaded.catalog_view(catalog.version, catalog.index)
    source = model.product_factors
    factors = np.zeros((catalog.size, source.shape[1]), dtype=np.float32)
    factors[catalog_idx] = source[model_idx]
    bias = None
    if model.product_bias is not None:
        bias = np.zeros(catalog.size, dtype=np.float32)
        bias[catalog_idx] = model.product_bias[model_idx]
    unknown = np.ones(catalog.size, dtype=bool)
    unknown[catalog_idx] = False
    return FactorLayout(factors, bias, unknown)


def score_block(
    loaded: LoadedModel,
    catalog: CatalogSnapshot,
    layout: FactorLayout | None,
    positions: np.ndarray,
) -> np.ndarray:
    """Scores (customers x catalogue positions) for customers the model knows."""
    model = loaded.model
    if layout is not None:
        scores = model.customer_factors[positions] @ layout.factors.T
        if layout.bias is not None:
            scores += layout.bias
        if model.customer_bias is not None:
            scores += model.customer_bias[positions][:, None]
        scores[:, layout.unknown] = NEG_INF
        return np.asarray(scores, dtype=np.float32)
    _, model_idx, catalog_idx = loaded.catalog_view(catalog.version, catalog.index)
    raw = model.score(positions)
    scores = np.full((positions.shape[0], catalog.size), NEG_INF, dtype=np.float32)
    scores[:, catalog_idx] = raw[:, model_idx]
    return scores


def top_candidates(scores: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``limit`` best finite scores, best first, ties by position.

    Returns ``(positions int64, scores float32)``, padded with -1 / -inf. A partial sort
    (``argpartition``) and a sort of ``limit`` items per row: never a full sort of the catalogue.
    """
    n, size = scores.shape
    limit = min(limit, size)
    if size > limit:
        top = np.argpartition(scores, size - limit, axis=1)[:, size - limit :]
    else:
        top = np.broadcast_to(np.arange(size), (n, size)).copy()
    top.sort(axis=1)  # positions ascending, so the stable sort below breaks ties by position
    values = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    top[~np.isfinite(values)] = -1
    return top.astype(np.int64), values


def gate_block(
    population: Population, rows: slice, exclude_held: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(allowed mask, personalised)`` for a block of customers: the policy's block form."""
    catalog = population.catalog
    holdings: sp.csr_matrix = population.holdings[rows]
    mask = allowed_mask(
        population.effective_risk[rows],
        catalog.risk_level,
        catalog.active,
        holdings,
        exclude_held=exclude_held,
    )
    personalised = population.consent[rows].copy()
    return mask, personalised


@dataclass
class ChunkResult:
    rows: list[Row]
    outcomes: dict[str, int]


class ChunkScorer:
    """Turns a block of customers into batch rows, with the serving service's assembly."""

    def __init__(
        self,
        service: RecommendationService,
        loaded: LoadedModel,
        population: Population,
        k: int,
        as_of: datetime,
        read_profile: object | None = None,
    ) -> None:
        self.service = service
        self.loaded = loaded
        self.population = population
        self.catalog = population.catalog
        self.k = k
        self.as_of = as_of
        self.request = RecommendRequest(k=k, strategy=loaded.strategy)
        self.exclude_held = None not in service.settings.placements_showing_held
        self.layout = factor_layout(loaded, self.catalog)
        # The fusion explains each item by its members: live path per customer, exactly as served.
        self.vectorised = loaded.algorithm != "fusion"
        self.read_profile = read_profile
        code = R.reason_for_algorithm(loaded.algorithm)
        self.base_reasons = [R.reason(code)]
        self.no_segment_reasons = (
            [R.reason(R.POPULAR)] if code == R.POPULAR_IN_SEGMENT else self.base_reasons
        )

    def score(self, batch_id: str, start: int, stop: int) -> ChunkResult:
        pop = self.population
        rows = slice(start, stop)
        mask, personalised = gate_block(pop, rows, self.exclude_held)
        positions = np.fromiter(
            (self.loaded.customer_position(c) for c in pop.customer_ids[start:stop]),
            dtype=np.int64,
            count=stop - start,
        )
        limit = candidate_limit(self.k)
        fast = personalised & (positions >= 0) & self.vectorised
        top = values = None
        if fast.any():
            scores = score_block(self.loaded, self.catalog, self.layout, positions[fast])
            np.putmask(scores, ~mask[fast], NEG_INF)
            top, values = top_candidates(scores, limit)
        fast_row = np.cumsum(fast) - 1
        out: list[Row] = []
        outcomes: dict[str, int] = {}
        service = self.service
        for i in range(stop - start):
            profile = pop.profile(start + i)
            decision = Gate(mask[i], bool(personalised[i]), int(pop.effective_risk[start + i]))
            if fast[i]:
                assert top is not None and values is not None
                j = int(fast_row[i])
                keep = top[j] >= 0
                base = self.base_reasons if profile.segment is not None else self.no_segment_reasons
                cands = C.Candidates(
                    top[j][keep],
                    values[j][keep],
                    None,
                    self.loaded.strategy,
                    self.loaded.version,
                    "live",
                    default_reasons=base,
                )
            else:
                if decision.personalised and positions[i] < 0 and self.read_profile is not None:
                    # Cold start scores declared attributes, so read the full profile as live does.
                    profile = self.read_profile(profile.customer_id)  # type: ignore[operator]
                cands = service._candidates(
                    profile.customer_id, profile, decision, self.catalog, self.request, limit
                )
            items = service._assemble(
                cands, decision, self.catalog, self.request, profile, self.as_of
            )
            if not items:
                outcome = NO_ELIGIBLE_PRODUCT
            elif not decision.personalised:
                outcome = NON_PERSONALISED
            elif cands.served_from == "fallback":
                outcome = FALLBACK
            elif positions[i] < 0:
                outcome = COLD_START
            else:
                outcome = PERSONALISED
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            cid = profile.customer_id
            for item in items:
                codes = "|".join(r["code"] for r in item.reasons)
                out.append((batch_id, cid, item.rank, item.product_id, item.score, codes))
        return ChunkResult(out, outcomes)
