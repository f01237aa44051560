"""Customer profiles (risk class, assessment date, consent): read scope to read, admin to upsert."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.auth import AUTH_RESPONSES, require_scope
from app.api.deps import ProfilesDep, SessionDep, SettingsDep
from app.schemas.customers import CustomerPublic, CustomerUpdate
from app.schemas.problems import problem_responses
from app.services import customers

router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=AUTH_RESPONSES)

CustomerId = Annotated[str, Path(min_length=1, max_length=64, description="External customer id.")]


@router.get(
    "/{customer_id}",
    operation_id="customers-get",
    response_model=CustomerPublic,
    dependencies=[require_scope("recommendations:read")],
    responses=problem_responses(404),
)
def read_customer(
    customer_id: CustomerId, session: SessionDep, settings: SettingsDep
) -> CustomerPublic:
    """Read a customer's profile: risk class, consent and current holdings."""
    return customers.get_customer(
        session, customer_id, validity_months=settings.risk_assessment_validity_months
    )


@router.put(
    "/{customer_id}",
    operation_id="customers-upsert",
    response_model=CustomerPublic,
    dependencies=[require_scope("admin")],
    responses={201: {"model": CustomerPublic, "description": "Created"}, **problem_responses()},
)
def upsert_customer(
    customer_id: CustomerId,
    body: CustomerUpdate,
    session: SessionDep,
    settings: SettingsDep,
    profiles: ProfilesDep,
    response: Response,
) -> CustomerPublic:
    """Create or update a profile; consent and risk changes apply from the next request."""
    customer, created = customers.upsert_customer(
        session,
        customer_id,
        body,
        validity_months=settings.risk_assessment_validity_months,
        invalidate=profiles.invalidate,
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return customer
