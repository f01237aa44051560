"""Admin-only routes: the ``AdminDep`` guard.

Until API keys exist, an admin request carries the header ``X-Finrec-Admin: 1``, the same switch
the recommendation endpoint uses for its admin-only options. The header is honoured only when
``settings.admin_header_allowed`` (``FINREC_ADMIN_HEADER_ENABLED`` and not production); otherwise
every admin route answers 403, so nothing admin-only is open in production by accident.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from app.api.errors import ProblemError
from app.settings import Settings

ADMIN_HEADER = "X-Finrec-Admin"


def require_admin(
    request: Request,
    x_finrec_admin: Annotated[
        str | None,
        Header(
            alias=ADMIN_HEADER,
            description="`1` marks an admin request (development and test deployments only).",
        ),
    ] = None,
) -> None:
    """Refuse the request with 403 problem+json unless it is an allowed admin request."""
    settings: Settings = request.app.state.settings
    if not settings.admin_header_allowed:
        raise ProblemError(403, "admin-required", "admin routes are disabled in this deployment")
    if x_finrec_admin != "1":
        raise ProblemError(
            403, "admin-required", f"this route is for administrators ({ADMIN_HEADER}: 1)"
        )


AdminDep = Depends(require_admin)
