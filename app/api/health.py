"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="health-liveness")
def healthz() -> dict[str, str]:
    """Liveness: the process is up (touches neither the database nor a model)."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="health-readiness")
def readyz(request: Request) -> JSONResponse:
    """Readiness: a model or a fallback can serve."""
    probe = getattr(request.app.state, "readiness", None)
    ready, detail = probe() if callable(probe) else (False, {"reason": "starting"})
    return JSONResponse(
        {"status": "ready" if ready else "not-ready", **detail}, status_code=200 if ready else 503
    )
