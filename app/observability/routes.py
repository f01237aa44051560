"""``GET /metrics``: the Prometheus text format of this app's registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response

from app.observability.metrics import CONTENT_TYPE


def metrics_router(dependencies: Sequence[Any] = ()) -> APIRouter:
    """The ``/metrics`` route, guarded by ``dependencies`` (the admin scope, unless public)."""
    router = APIRouter(tags=["observability"], dependencies=list(dependencies))

    @router.get(
        "/metrics",
        operation_id="observability-metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    def metrics(request: Request) -> Response:
        """Prometheus metrics of this process (text exposition format)."""
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)

    return router
