"""Campaign administration: rules, status over time, filters, ending instead of deleting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Product
from app.schemas.campaigns import CampaignCreate, CampaignUpdate
from app.services import campaigns
from app.services.recommend.promotions import PromotionBook

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Any:
    with session_factory() as s:
        for pid in ("P01", "P02"):
            s.add(Product(product_id=pid, name=pid, category="deposit", risk_level="R1"))
        s.commit()
        yield s


def new(**fields: Any) -> CampaignCreate:
    return CampaignCreate.model_validate({"name": "spring", "product_id": "P01", **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "a boost above 0, a pin_rank, or both"),
        ({"boost": 0}, "a boost above 0, a pin_rank, or both"),
        ({"boost": -1}, "greater than or equal to 0"),
        ({"boost": 10.5}, "less than or equal to 10"),
        ({"boost": "nan"}, "finite number"),
        ({"pin_rank": 0}, "greater than or equal to 1"),
        ({"pin_rank": 51}, "less than or equal to 50"),
        ({"boost": 1, "starts_at": NOW, "ends_at": NOW}, "ends_at must be after starts_at"),
        ({"boost": 1, "ends_at": "2026-12-01T00:00:00"}, "timezone"),
        ({"boost": 1, "colour": "red"}, "Extra inputs"),
    ],
)
def test_create_schema_refuses_broken_campaigns(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        new(**fields)


def test_update_schema_refuses_null_for_required_fields() -> None:
    with pytest.raises(ValidationError, match="boost, enabled cannot be null"):
        CampaignUpdate.model_validate({"boost": None, "enabled": None})
    assert CampaignUpdate.model_validate({"pin_rank": None}).model_fields_set == {"pin_rank"}


def test_status_follows_the_window_and_the_switch(session: Session) -> None:
    created = campaigns.create(session, new(boost=1, starts_at=NOW + HOUR), now=NOW)
    assert created.status == "scheduled" and created.enabled
    assert campaigns.read(session, created.id, now=NOW + 2 * HOUR).status == "live"
    off = campaigns.update(session, created.id, CampaignUpdate(enabled=False), now=NOW + 2 * HOUR)
    assert off.status == "disabled"
    ended = campaigns.end(session, created.id, now=NOW + 3 * HOUR)
    assert ended.status == "ended" and ended.ends_at == NOW + 3 * HOUR


def test_product_must_exist_and_the_window_must_lie_ahead(session: Session) -> None:
    with pytest.raises(campaigns.UnknownProduct, match="'P99'"):
        campaigns.create(session, new(product_id="P99", boost=1), now=NOW)
    with pytest.raises(campaigns.InvalidCampaign, match="in the past"):
        campaigns.create(session, new(boost=1, ends_at=NOW - HOUR), now=NOW)
    assert campaigns.list_campaigns(session, now=NOW).count == 0


def test_update_validates_the_merged_campaign(session: Session) -> None:
    pinned = campaigns.create(session, new(pin_rank=2, starts_at=NOW), now=NOW)
    with pytest.raises(campaigns.InvalidCampaign, match="a boost above 0, a pin_rank"):
        campaigns.update(session, pinned.id, CampaignUpdate(pin_rank=None), now=NOW)
    with pytest.raises(campaigns.InvalidCampaign, match="ends_at must be after starts_at"):
        campaigns.update(
            session,
            pinned.id,
            CampaignUpdate(starts_at=NOW + 2 * HOUR, ends_at=NOW + HOUR),
            now=NOW,
        )
    with pytest.raises(campaigns.InvalidCampaign, match="end it instead"):
        campaigns.update(session, pinned.id, CampaignUpdate(ends_at=NOW + HOUR), now=NOW + 2 * HOUR)
    changed = campaigns.update(
        session, pinned.id, CampaignUpdate(boost=2.5, pin_rank=None, placement="home"), now=NOW
    )
    assert (changed.boost, changed.pin_rank, changed.placement) == (2.5, None, "home")
    with pytest.raises(campaigns.CampaignNotFound):
        campaigns.update(session, 999, CampaignUpdate(boost=1), now=NOW)


def test_an_ended_campaign_stays_on_record_and_cannot_change(session: Session) -> None:
    scheduled = campaigns.create(session, new(boost=1, starts_at=NOW + HOUR), now=NOW)
    ended = campaigns.end(session, scheduled.id, now=NOW)
    # It never ran: its window is empty, at the moment it was ended.
    assert (ended.starts_at, ended.ends_at, ended.status) == (NOW, NOW, "ended")
    with pytest.raises(campaigns.CampaignEnded, match="cannot change"):
        campaigns.end(session, scheduled.id, now=NOW + HOUR)
    with pytest.raises(campaigns.CampaignEnded):
        campaigns.update(session, scheduled.id, CampaignUpdate(enabled=True), now=NOW + HOUR)
    assert campaigns.read(session, scheduled.id, now=NOW + HOUR).status == "ended"


def test_list_filters(session: Session) -> None:
    live = campaigns.create(session, new(boost=1, placement="home"), now=NOW)
    everywhere = campaigns.create(session, new(pin_rank=1, product_id="P02"), now=NOW)
    later = campaigns.create(
        session, new(boost=1, starts_at=NOW + HOUR, placement="email"), now=NOW
    )
    off = campaigns.create(session, new(boost=1, enabled=False), now=NOW)
    done = campaigns.create(session, new(boost=1), now=NOW)
    campaigns.end(session, done.id, now=NOW)

    def ids(**filters: Any) -> list[int]:
        found = campaigns.list_campaigns(session, now=NOW + timedelta(minutes=1), **filters)
        assert found.count == len(found.data)
        return [c.id for c in found.data]

    assert ids() == [done.id, off.id, later.id, everywhere.id, live.id]  # newest first
    assert ids(active=True) == [everywhere.id, live.id]
    assert ids(active=False) == [done.id, off.id, later.id]
    assert ids(placement="home") == [done.id, off.id, everywhere.id, live.id]
    assert ids(product_id="P02") == [everywhere.id]
    assert ids(active=True, placement="email") == [everywhere.id]
    page = campaigns.list_campaigns(session, limit=2, offset=1, now=NOW)
    assert page.count == 5 and [c.id for c in page.data] == [off.id, later.id]


def test_the_promotion_book_serves_what_administration_wrote(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    book = PromotionBook(session_factory)
    made = campaigns.create(session, new(boost=1.5, pin_rank=3, placement="home"), now=NOW)
    assert book.refresh()
    [promo] = book.active("home", datetime.now(UTC))
    assert (promo.product_id, promo.boost, promo.pin_rank) == ("P01", 1.5, 3)
    assert book.active("email", datetime.now(UTC)) == []
    campaigns.end(session, made.id)
    assert book.refresh() and book.active("home", datetime.now(UTC)) == []


def test_the_promotion_book_leaves_finished_campaigns_in_the_database(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    live = campaigns.create(session, new(boost=1.0), now=NOW)
    finished = campaigns.create(session, new(name="autumn", product_id="P02", pin_rank=1), now=NOW)
    campaigns.end(session, finished.id)
    book = PromotionBook(session_factory)
    assert book.refresh()
    assert [p.product_id for p in book.current] == ["P01"]
    assert campaigns.read(session, live.id).status == "live"
