"""Exposure rows written by a child process: nothing lost across a stop, a killed child or an
outage; the buffer stays bounded and drops are counted."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import migrate
from app.db.models import Exposure
from app.db.session import make_engine, make_session_factory
from app.services.exposure_process import ExposureProcessLog, exposure_writer
from app.services.exposures import ExposureLog
from app.services.recommend.flow import exposure_row
from app.settings import Settings
from tests.app.services.recommend import bank


def record(log: ExposureLog, i: int) -> tuple[Any, ...]:
    """Queue one exposure the way the serving flow does; returns the values queued."""
    args = (
        f"rec{i:05d}",
        f"C{i % 7}",
        "als",
        "v1",
        "live",
        i % 5 == 0,
        "app",
        None if i % 2 else "home",
        None,
        None,
        b'[{"product_id":"P01","rank":1,"score":0.5,"reasons":["collaborative"]}]',
        bank.NOW,
    )
    log.record_later(exposure_row, *args)
    return args


def stored(session_factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with session_factory() as session:
        rows = session.scalars(select(Exposure).order_by(Exposure.recommendation_id)).all()
        return [
            (
                r.recommendation_id,
                r.customer_id,
                r.strategy,
                r.model_version,
                r.served_from,
                r.degraded,
                r.channel,
                r.placement,
                r.experiment,
                r.variant,
                r.items,
                r.served_at,
            )
            for r in rows
        ]


def expected(args: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    items = [{"product_id": "P01", "rank": 1, "score": 0.5, "reasons": ["collaborative"]}]
    return sorted((*a[:10], items, a[11]) for a in args)


async def wait_for(condition: Any, seconds: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not condition():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


def writer(
    database_url: str, session_factory: sessionmaker[Session], **kw: Any
) -> ExposureProcessLog:
    options: dict[str, Any] = {"flush_seconds": 0.05, "restart_seconds": 0.05, **kw}
    return ExposureProcessLog(session_factory, database_url, **options)


def test_rows_written_equal_rows_recorded_across_a_stop(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    async def run() -> list[tuple[Any, ...]]:
        log = writer(database_url, session_factory, flush_seconds=30.0)
        log.start()
        recorded = [record(log, i) for i in range(300)]
        await asyncio.sleep(0.1)  # some frames sent, nothing committed yet (30 s flush)
        recorded += [record(log, i) for i in range(300, 500)]
        await log.stop()  # must write everything, sent or still queued
        assert log.pending == 0 and log.dropped == 0 and log.written == 500
        assert log.restarts == 0
        return recorded

    recorded = asyncio.run(run())
    assert stored(session_factory) == expected(recorded)


def test_flush_from_another_thread_returns_once_everything_is_written(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    async def run() -> list[tuple[Any, ...]]:
        log = writer(database_url, session_factory, flush_seconds=30.0)
        log.start()
        recorded = [record(log, i) for i in range(100)]
        await wait_for(lambda: log._in_flight_rows == 100)  # all with the child, uncommitted
        recorded += [record(log, i) for i in range(100, 150)]
        await asyncio.to_thread(log.flush)
        assert stored(session_factory) == expected(recorded) and log.pending == 0
        await log.stop()
        return recorded

    recorded = asyncio.run(run())
    assert stored(session_factory) == expected(recorded)


def test_killed_child_is_restarted_and_nothing_is_lost(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    async def run() -> list[tuple[Any, ...]]:
        log = writer(database_url, session_factory)
        log.start()
        recorded = [record(log, i) for i in range(200)]
        await wait_for(lambda: log.written == 200)
        recorded += [record(log, i) for i in range(200, 400)]
        await wait_for(lambda: log.child_pid is not None and log._in_flight_rows > 0)
        first = log.child_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # mid-run: frames sent but not acknowledged
        await wait_for(lambda: log.restarts == 1 and log.child_pid not in (None, first))
        recorded += [record(log, i) for i in range(400, 500)]
        await log.stop()
        assert log.dropped == 0 and log.pending == 0
        return recorded

    recorded = asyncio.run(run())
    assert stored(session_factory) == expected(recorded)


def test_database_down_keeps_a_bounded_buffer_and_counts_drops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"  # no tables yet: every write fails
    factory = make_session_factory(make_engine(url))

    async def run() -> None:
        log = writer(url, factory, max_buffer=50, batch_rows=20)
        log.start()
        for i in range(80):
            record(log, i)
            await asyncio.sleep(0.002)
        await wait_for(lambda: log.failed_flushes >= 1)
        for i in range(80, 120):
            record(log, i)
        assert log.pending <= 50
        assert log.dropped >= 70 and log.written == 0
        kept = log.pending
        migrate.upgrade(url)  # the database comes back
        await wait_for(lambda: log.pending == 0)
        await log.stop()
        assert log.written == kept and log.written + log.dropped == 120

    asyncio.run(run())
    with factory() as session:
        assert len(session.scalars(select(Exposure)).all()) == 50


def test_setting_chooses_the_writer(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    process = exposure_writer(Settings(database_url=database_url), session_factory)
    thread = exposure_writer(
        Settings(database_url=database_url, exposure_writer="thread"), session_factory
    )
    memory = exposure_writer(Settings(database_url="sqlite://"), session_factory)
    assert isinstance(process, ExposureProcessLog)
    assert type(thread) is ExposureLog and type(memory) is ExposureLog


def test_rows_the_pipe_cannot_carry_are_written_in_process(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    async def run() -> list[tuple[Any, ...]]:
        log = writer(database_url, session_factory)
        log.start()
        recorded = [record(log, i) for i in range(3)]
        unpicklable = ("rec-lambda", *recorded[0][1:])
        log.record_later(lambda *a: exposure_row(*a), *unpicklable)
        recorded.append(unpicklable)
        await wait_for(lambda: log.written == 4)
        await log.stop()
        assert log.pending == 0 and log.dropped == 0
        return recorded

    recorded = asyncio.run(run())
    assert stored(session_factory) == expected(recorded)


def test_child_logs_failures_in_the_server_format_without_customer_values(
    tmp_path: Path, capfd: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"  # no tables yet: every write fails
    factory = make_session_factory(make_engine(url))
    planted = "PLANTED-CUSTOMER-4711"

    async def run() -> None:
        log = writer(url, factory, batch_rows=1, log_json=True)
        log.start()
        args = list(record(log, 0))
        args[1] = planted
        log.record_later(exposure_row, *args)
        await wait_for(lambda: log.failed_flushes >= 1)
        migrate.upgrade(url)
        await wait_for(lambda: log.pending == 0)
        await log.stop()

    asyncio.run(run())
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert not [line for line in lines if planted in line]
    # This process may log too (migrations, in whatever format an earlier test set up): judge
    # the child's lines only.
    child = [line for line in lines if "exposure write failed" in line]
    assert child, "the failed write was not logged"
    assert all(line.lstrip().startswith("{") for line in child), child


def test_write_heavy_sqlite_engines_get_a_larger_cache_and_rarer_checkpoints(
    tmp_path: Path,
) -> None:
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'log.db'}"
    for heavy, cache, checkpoint in ((True, -65536, 20000), (False, -2000, 1000)):
        engine = make_engine(url, sqlite_write_heavy=heavy)
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA cache_size")).scalar_one() == cache
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == checkpoint
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        engine.dispose()
