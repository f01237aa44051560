"""Metrics, request ids and structured logs for the service (see docs/observability.md)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.observability.context import bind_recommendation
from app.observability.logging import configure_logging
from app.observability.metrics import Metrics
from app.observability.middleware import Observability

__all__ = ["Metrics", "Observability", "configure_logging", "note_recommendation"]


def note_recommendation(request: Request, result: Any) -> None:
    """Count one served list and tag the request's log lines with its recommendation id.

    ``result`` is a :class:`~app.services.recommend.service.Recommendation`; the items the policy
    gate removed are counted by rule when the result carries them (``removed``).
    """
    bind_recommendation(result.recommendation_id)
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.observe_recommendation(
            result.served_from,
            result.strategy,
            result.degraded,
            getattr(result, "removed", ()),
        )
