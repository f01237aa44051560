"""``GET /metrics``: the Prometheus text format of this app's registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response

from app.observability.metrics import CONTENT_TYPE


def metrics_router(dependencies: Sequence[Any] = ()) -> APIRouter:
    """The ``/metrics`` route, guarded by ``dependencies`` (the admin scope, unless public)."""
    router = APIRouter(tags=["observability"], dependencies=list(dependencies))

    # Outside the OpenAPI document: an operations endpoint in Prometheus' text format, not part
    # of the JSON API that clients are generated from.
    @router.get("/metrics", response_class=Response, include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus metrics of this process (text exposition format)."""
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)

    return router
