"""The catalogue holder's refresh: an unchanged catalogue keeps its snapshot (and version)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Holding, Product
from app.services.recommend.catalog_holder import CatalogHolder

SINCE = datetime(2026, 1, 5, tzinfo=UTC)


def _seed(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        s.add_all(
            [
                Product(product_id="P01", name="Saver", category="deposit", risk_level="R1"),
                Product(product_id="P02", name="Fund", category="fund", risk_level="R3"),
                Customer(customer_id="C1", segment="mass", risk_class="C3"),
            ]
        )
        s.commit()
        s.add(Holding(customer_pk=1, product_pk=1, source="import", since=SINCE))
        s.commit()


def test_a_refresh_that_finds_nothing_new_keeps_the_snapshot(
    session_factory: sessionmaker[Session],
) -> None:
    _seed(session_factory)
    holder = CatalogHolder(session_factory)
    assert holder.refresh()
    first = holder.current
    assert first is not None and first.popularity.tolist() == [1.0, 0.0]

    assert holder.refresh()
    assert holder.current is first  # same object, same version: per-snapshot caches stay

    with session_factory() as s:  # popularity changes: a new snapshot
        s.add(Holding(customer_pk=1, product_pk=2, source="import", since=SINCE))
        s.commit()
    assert holder.refresh()
    second = holder.current
    assert second is not first and second is not None
    assert second.version > first.version and second.popularity.tolist() == [1.0, 1.0]

    with session_factory() as s:  # a status change: a new snapshot
        product = s.query(Product).filter_by(product_id="P02").one()
        product.status = "suspended"
        s.commit()
    assert holder.refresh()
    third = holder.current
    assert third is not second and third is not None and not third.active[1]
