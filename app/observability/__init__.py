"""Metrics, request ids and structured logs for the service (see docs/observability.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from app.observability.context import bind_recommendation
from app.observability.logging import configure_logging
from app.observability.metrics import Metrics
from app.observability.middleware import Observability

if TYPE_CHECKING:
    from app.services.recommend.service import Recommendation

__all__ = ["Metrics", "Observability", "configure_logging", "note_recommendation", "note_served"]


def note_recommendation(request: Request, result: Recommendation) -> None:
    """Count one served list (and the items the rules kept off it, by rule) and tag the
    request's log lines with its recommendation id."""
    note_served(getattr(request.app.state, "metrics", None), result)


def note_served(metrics: Metrics | None, result: Recommendation) -> None:
    """:func:`note_recommendation` for a caller that holds the app's metrics already."""
    bind_recommendation(result.recommendation_id)
    if metrics is not None:
        metrics.observe_recommendation(
            result.served_from,
            result.strategy,
            result.degraded,
            result.removed,
        )
