"""One request end to end: profile (cache, then database, else fail closed) -> list -> exposure.

This is the function the route calls. The database is touched only on a profile cache miss (in a
worker thread, so the event loop never blocks); a database failure never fails the request: the
customer is served the fail-closed list (R1 only, non-personalised) with ``degraded=true``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import anyio.to_thread
import orjson
from anyio import CapacityLimiter

from app.services.errors import StrategyNotFound
from app.services.experiments.assignment import ExperimentBook
from app.services.exposures import ExposureLog, ExposureRow
from app.services.profiles import Profile, ProfileCache, ProfileUnavailable
from app.services.recommend.service import (
    Recommendation,
    RecommendationService,
    RecommendRequest,
)


@dataclass(frozen=True)
class ServingState:
    """The pieces a recommendation request needs (all on ``app.state``)."""

    service: RecommendationService
    profiles: ProfileCache
    exposures: ExposureLog
    experiments: ExperimentBook | None = None
    # How many profile reads (cache misses) run at once; None: the worker threads' own limit.
    profile_reads: CapacityLimiter | None = None
    # The longest a request waits for its profile read (None: as long as it takes).
    profile_wait: float | None = None


async def profile_for(
    profiles: ProfileCache,
    customer_id: str,
    reads: CapacityLimiter | None = None,
    wait: float | None = None,
) -> tuple[Profile | None, bool]:
    """``(profile, degraded)``: cached, else read; ``(None, True)`` when the store is down or
    the read took longer than ``wait`` seconds (its turn included).

    A read runs in a worker thread, at most ``reads`` at once: more threads than pooled
    connections would only open and close extra connections (each a new SQLite page cache or a
    new PostgreSQL session) and contend for the interpreter. A read that has started is never
    abandoned (its thread holds a connection); the engine's network timeout bounds it, and
    requests behind it stop waiting at ``wait``.

    Raises :class:`~app.services.errors.CustomerNotFound` for a customer the store does not know.
    """
    profile = profiles.get(customer_id)
    if profile is not None:
        return profile, False
    try:
        with anyio.fail_after(wait):
            profile = await anyio.to_thread.run_sync(profiles.load, customer_id, limiter=reads)
        return profile, False
    except (ProfileUnavailable, TimeoutError):
        return None, True


async def recommend_for_customer(
    state: ServingState, customer_id: str, request: RecommendRequest
) -> Recommendation:
    """Recommend, log the decision record (buffered, one row) and return the list."""
    service = state.service
    if request.strategy is not None and service.models.get(request.strategy) is None:
        raise StrategyNotFound(f"no model is loaded for strategy {request.strategy!r}")
    # An experiment arm picks the strategy (and k); an admin override stays outside experiments.
    # The arm's list still passes the same policy gate as every other path.
    assignment = None
    if request.strategy is None and state.experiments is not None:
        assignment = state.experiments.assign(customer_id, request.placement)
        if assignment is not None:
            request = replace(request, strategy=assignment.strategy, k=assignment.k or request.k)
    profile, degraded = await profile_for(
        state.profiles, customer_id, state.profile_reads, state.profile_wait
    )
    result = service.recommend(customer_id, profile, request, degraded=degraded)
    if assignment is not None:
        result = replace(result, experiment=assignment.experiment, variant=assignment.variant)
    # Only plain values are queued (the items already encoded): nothing of the response is kept
    # alive until the flush, so the garbage collector has no per-request survivors to scan.
    state.exposures.record_later(
        exposure_row,
        result.recommendation_id,
        result.customer_id,
        result.strategy,
        result.model_version,
        result.served_from,
        result.degraded,
        request.channel,
        request.placement,
        result.experiment,
        result.variant,
        encode_items(result),
        result.served_at,
        state.service.policy_version,
        result.basis,
        result.risk_class,
        result.removed,
    )
    return result


def encode_items(result: Recommendation) -> bytes:
    """The ``items`` column of an exposure: what was shown, ranked how, and why (codes)."""
    return orjson.dumps(
        [
            {
                "product_id": item.product_id,
                "rank": item.rank,
                "score": item.score,
                "reasons": [r["code"] for r in item.reasons],
            }
            for item in result.items
        ]
    )


def exposure_row(
    recommendation_id: str,
    customer_id: str,
    strategy: str,
    model_version: str | None,
    served_from: str,
    degraded: bool,
    channel: str | None,
    placement: str | None,
    experiment: str | None,
    variant: str | None,
    items: bytes,
    served_at: datetime,
    policy_version: str | None = None,
    basis: str | None = None,
    risk_class: int | None = None,
    removed: Sequence[tuple[str, str]] = (),
) -> ExposureRow:
    """The decision record of one response, built by the flusher from the queued values.

    ``removed`` is queued as the service's own list of ``(product_id, rule)`` tuples (plain
    values, so the process writer can pickle it) and encoded here, off the request.
    """
    return {
        "recommendation_id": recommendation_id,
        "customer_id": customer_id,
        "strategy": strategy,
        "model_version": model_version,
        "served_from": served_from,
        "degraded": degraded,
        "channel": channel,
        "placement": placement,
        "experiment": experiment,
        "variant": variant,
        "items": orjson.Fragment(items),
        "served_at": served_at,
        "policy_version": policy_version,
        "basis": basis,
        "risk_class": risk_class,
        "removed": removed,
    }
