"""Decision records (admin): what each served list showed a customer, why, and what was kept off."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime

from app.api.auth import AUTH_RESPONSES, require_scope
from app.api.deps import SessionDep
from app.schemas.decisions import DecisionsPublic
from app.schemas.problems import problem_responses
from app.services import decisions

router = APIRouter(
    prefix="/v1/customers",
    tags=["decisions"],
    dependencies=[require_scope("admin")],
    responses=AUTH_RESPONSES,
)


@router.get(
    "/{customer_id}/decisions",
    operation_id="decisions-list",
    response_model=DecisionsPublic,
    responses=problem_responses(404),
)
def list_decisions(
    customer_id: Annotated[
        str, Path(min_length=1, max_length=64, description="External customer id.")
    ],
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Records per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Only records served at or after this time.")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="Only records served before this time.")
    ] = None,
) -> DecisionsPublic:
    """A customer's decision records, newest first, with items, reasons and removals."""
    return decisions.list_decisions(
        session, customer_id, limit=limit, cursor=cursor, since=since, until=until
    )
