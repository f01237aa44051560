"""Decision records: paging newest first, time ranges, unknown customers, retention prune, and
(PostgreSQL) the append-only guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Exposure
from app.services import decisions
from app.services.errors import CustomerNotFound
from app.services.exposures import ExposureLog

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def log_rows(
    session_factory: sessionmaker[Session],
    customer: str,
    ages_days: list[float],
    now: datetime = NOW,
) -> None:
    """Write records through the exposure log itself (the only writer in production)."""
    log = ExposureLog(session_factory)
    for i, age in enumerate(ages_days):
        log.record(
            {
                "recommendation_id": f"{customer}-{i}",
                "customer_id": customer,
                "strategy": "popularity",
                "model_version": "v1",
                "served_from": "live",
                "degraded": False,
                "channel": "app",
                "placement": "home",
                "experiment": None,
                "variant": None,
                "items": [{"product_id": "P1", "rank": 1, "score": 0.5, "reasons": ["popular"]}],
                "served_at": now - timedelta(days=age),
                "policy_version": "pv",
                "basis": "personalised",
                "risk_class": 3,
                "removed": [("P9", "suitability")],
            }
        )
    assert log.flush() == len(ages_days)


@pytest.fixture
def customers(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        session.add_all([Customer(customer_id="C1", features={}), Customer(customer_id="C2")])


@pytest.mark.usefixtures("customers")
def test_pages_newest_first_without_gaps_or_repeats(session_factory: sessionmaker[Session]) -> None:
    # Two records share a time: the row id breaks the tie, so paging is still exact.
    log_rows(session_factory, "C1", [5, 4, 3, 3, 2, 1, 0])
    log_rows(session_factory, "C2", [0])
    seen: list[str] = []
    cursor = None
    with session_factory() as session:
        while True:
            page = decisions.list_decisions(session, "C1", limit=3, cursor=cursor)
            seen += [r.recommendation_id for r in page.data]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert seen == ["C1-6", "C1-5", "C1-4", "C1-3", "C1-2", "C1-1", "C1-0"]
    with session_factory() as session:
        first = decisions.list_decisions(session, "C1", limit=1).data[0]
    assert first.policy_version == "pv" and first.basis == "personalised"
    assert first.risk_class == 3 and first.served_at == NOW
    assert [(r.product_id, r.rule) for r in first.removed] == [("P9", "suitability")]
    assert first.items[0].reasons == ["popular"]


@pytest.mark.usefixtures("customers")
def test_time_range(session_factory: sessionmaker[Session]) -> None:
    log_rows(session_factory, "C1", [3, 2, 1, 0])
    with session_factory() as session:
        page = decisions.list_decisions(
            session, "C1", since=NOW - timedelta(days=2), until=NOW - timedelta(days=1)
        )
        assert [r.recommendation_id for r in page.data] == ["C1-1"]
        with pytest.raises(decisions.InvalidDecisionQuery):
            decisions.list_decisions(session, "C1", since=NOW, until=NOW)
        far = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # before UTC can hold
        bad_cursors = ["not-a-cursor", decisions.encode_cursor(NOW, 1)[:-3] + "%%%", "", "AAAA"]
        for cursor in bad_cursors:
            with pytest.raises(decisions.InvalidDecisionQuery):
                decisions.list_decisions(session, "C1", cursor=cursor)
        with pytest.raises(decisions.InvalidDecisionQuery):
            decisions.list_decisions(session, "C1", since=far)


@pytest.mark.usefixtures("customers")
def test_unknown_customer_but_records_outlive_a_deleted_one(
    session_factory: sessionmaker[Session],
) -> None:
    log_rows(session_factory, "GONE", [1])
    with session_factory() as session:
        with pytest.raises(CustomerNotFound):
            decisions.list_decisions(session, "nobody")
        assert decisions.list_decisions(session, "C2").data == []
        assert len(decisions.list_decisions(session, "GONE").data) == 1


def test_prune_removes_only_records_past_retention(session_factory: sessionmaker[Session]) -> None:
    log_rows(session_factory, "C1", [500, 401, 399, 10, 0])
    dry = decisions.prune(session_factory, 400, dry_run=True, now=NOW)
    assert dry.records == 2 and dry.dry_run and dry.cutoff == NOW - timedelta(days=400)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Exposure)) == 5
    done = decisions.prune(session_factory, 400, now=NOW, batch_rows=1)  # several batches
    assert done.records == 2 and not done.dry_run
    with session_factory() as session:
        left = session.scalars(select(Exposure.recommendation_id).order_by(Exposure.id)).all()
    assert left == ["C1-2", "C1-3", "C1-4"]
    assert decisions.prune(session_factory, 400, now=NOW).records == 0


def test_records_refuse_update_and_delete_on_postgresql(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("the append-only trigger exists on PostgreSQL only")
    log_rows(session_factory, "C1", [1])
    for statement in (
        update(Exposure).values(customer_id="someone-else"),
        delete(Exposure),
    ):
        with (
            pytest.raises(DBAPIError, match="append-only"),
            session_factory() as session,
            session.begin(),
        ):
            session.execute(statement)
    with session_factory() as session, session.begin():
        # The setting is transaction-local: a later transaction is guarded again.
        session.execute(text("SET LOCAL finrec.decision_prune = 'on'"))
    with (
        pytest.raises(DBAPIError, match="append-only"),
        session_factory() as session,
        session.begin(),
    ):
        session.execute(delete(Exposure))
    assert decisions.prune(session_factory, 1, now=NOW + timedelta(days=5)).records == 1
