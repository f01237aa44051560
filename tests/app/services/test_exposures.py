"""Exposure log: buffered, flushed in batches, bounded, and never loses rows to a brief outage."""

from __future__ import annotations

import asyncio

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Exposure
from app.services.exposures import ExposureLog
from tests.app.services.recommend import bank


def row(i: int) -> dict[str, object]:
    return {
        "recommendation_id": f"r{i}",
        "customer_id": "C1",
        "strategy": "popularity",
        "model_version": None,
        "served_from": "fallback",
        "degraded": False,
        "channel": "app",
        "placement": "home",
        "experiment": None,
        "variant": None,
        "items": [{"product_id": "P01", "rank": 1, "score": 1.0, "reasons": ["popular"]}],
        "served_at": bank.NOW,
    }


def count(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(Exposure)) or 0)


def test_flush_writes_everything_in_batches(session_factory: sessionmaker[Session]) -> None:
    log = ExposureLog(session_factory, batch_rows=2)
    for i in range(5):
        log.record(row(i))
    assert log.pending == 5 and count(session_factory) == 0
    assert log.flush() == 5
    assert count(session_factory) == 5 and log.pending == 0
    with session_factory() as session:
        stored = session.scalars(select(Exposure).where(Exposure.recommendation_id == "r3")).one()
    assert stored.items[0]["reasons"] == ["popular"]


def test_full_buffer_drops_the_oldest() -> None:
    log = ExposureLog(None, max_buffer=3)
    for i in range(5):
        log.record(row(i))
    assert log.pending == 3 and log.dropped == 2


def test_failed_flush_keeps_rows_for_the_next_try(session_factory: sessionmaker[Session]) -> None:
    broken = sessionmaker(bind=create_engine("sqlite:////nonexistent-dir/finrec.db"))
    log = ExposureLog(broken)
    log.record(row(1))
    assert log.flush() == 0
    assert log.pending == 1 and log.failed_flushes == 1
    log._session_factory = session_factory  # the database is back
    assert log.flush() == 1


def test_a_row_the_database_refuses_is_left_out_instead_of_blocking_the_log(
    session_factory: sessionmaker[Session],
) -> None:
    log = ExposureLog(session_factory, batch_rows=10)
    bad = {**row(2), "recommendation_id": None}  # NOT NULL: refused for its content
    for item in (row(1), bad, row(3)):
        log.record(item)
    assert log.flush() == 2
    assert log.pending == 0 and log.refused == 1 and log.failed_flushes == 0
    assert count(session_factory) == 2
    log.record(row(4))  # the log goes on
    assert log.flush() == 1 and count(session_factory) == 3


def test_stop_flushes_what_is_left(session_factory: sessionmaker[Session]) -> None:
    async def run() -> None:
        log = ExposureLog(session_factory, flush_seconds=60)
        log.start()
        log.record(row(1))
        await log.stop()

    asyncio.run(run())
    assert count(session_factory) == 1
