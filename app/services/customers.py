"""Customer profiles: read and upsert (the suitability inputs live here)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Customer, Holding, Product
from app.schemas.customers import CustomerPublic, CustomerUpdate
from app.services.errors import CustomerNotFound

Invalidate = Callable[[str], None]


def risk_assessment_current(
    assessed_at: datetime | None, validity_months: int, now: datetime | None = None
) -> bool:
    """True when a risk assessment exists and is younger than ``validity_months``."""
    if assessed_at is None:
        return False
    now = now or datetime.now(UTC)
    months = (now.year - assessed_at.year) * 12 + (now.month - assessed_at.month)
    if now.day < assessed_at.day:
        months -= 1
    return assessed_at <= now and months < validity_months


def _public(session: Session, customer: Customer, validity_months: int) -> CustomerPublic:
    held = session.scalars(
        select(Product.product_id)
        .join(Holding, Holding.product_pk == Product.id)
        .where(Holding.customer_pk == customer.id)
        .order_by(Product.product_id)
    ).all()
    return CustomerPublic(
        customer_id=customer.customer_id,
        segment=customer.segment,
        age=customer.age,
        income_band=customer.income_band,
        channel=customer.channel,
        risk_class=customer.risk_class,
        risk_assessed_at=customer.risk_assessed_at,
        risk_assessment_current=risk_assessment_current(customer.risk_assessed_at, validity_months),
        consent_personalization=customer.consent_personalization,
        features=customer.features or {},
        holdings=list(held),
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def get_customer(session: Session, customer_id: str, *, validity_months: int) -> CustomerPublic:
    """The stored profile of one customer, with current holdings."""
    customer = session.scalar(select(Customer).where(Customer.customer_id == customer_id))
    if customer is None:
        raise CustomerNotFound(f"no customer with id {customer_id!r}")
    return _public(session, customer, validity_months)


def _apply(session: Session, customer_id: str, update: CustomerUpdate) -> tuple[Customer, bool]:
    customer = session.scalar(select(Customer).where(Customer.customer_id == customer_id))
    created = customer is None
    if customer is None:
        customer = Customer(customer_id=customer_id)
        session.add(customer)
    fields = set(update.model_fields_set)
    if created:
        fields |= {"consent_personalization", "features"}
    for name, value in update.model_dump(include=fields).items():
        setattr(customer, name, value)
    # Clearing the risk class clears its assessment date too, unless a date is given.
    if "risk_class" in update.model_fields_set and update.risk_class is None:
        customer.risk_assessed_at = update.risk_assessed_at
    return customer, created


def upsert_customer(
    session: Session,
    customer_id: str,
    update: CustomerUpdate,
    *,
    validity_months: int,
    invalidate: Invalidate | None = None,
) -> tuple[CustomerPublic, bool]:
    """Create or update a profile; returns it and whether it was created.

    Only the fields present in ``update`` change. The profile cache is invalidated after the
    commit so that a consent or risk change applies from the very next request.
    """
    # Two writers creating the same customer at once: the loser retries as an update.
    for attempt in range(2):
        customer, created = _apply(session, customer_id, update)
        try:
            session.commit()
            break
        except IntegrityError:
            session.rollback()
            if attempt:
                raise
    if invalidate is not None:
        invalidate(customer_id)
    return _public(session, customer, validity_months), created
