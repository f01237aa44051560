"""Customer upsert when another writer creates the same customer at the same moment."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer
from app.schemas.customers import CustomerUpdate
from app.services import customers


def test_concurrent_create_becomes_an_update(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = customers._apply
    raced: list[bool] = []

    def racing(session: Session, customer_id: str, update: CustomerUpdate) -> tuple[Customer, bool]:
        result = original(session, customer_id, update)
        if not raced:  # another writer commits the same customer before this one does
            raced.append(True)
            with session_factory() as other:
                other.add(Customer(customer_id=customer_id, segment="other"))
                other.commit()
        return result

    monkeypatch.setattr(customers, "_apply", racing)
    with session_factory() as session:
        public, created = customers.upsert_customer(
            session, "c-1", CustomerUpdate(age=30), validity_months=24
        )
    assert created is False
    assert (public.age, public.segment, public.consent_personalization) == (30, "other", True)
