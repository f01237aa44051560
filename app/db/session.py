"""Engine and session factory, created by whoever owns the process (app lifespan, CLI, tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while an import or precompute writes; FKs are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_write_heavy(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB
    cursor.execute("PRAGMA wal_autocheckpoint=20000")  # pages
    cursor.close()


def sqlite_in_memory(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database (it lives inside one process and one
    connection: nothing to pool, nothing another process could open)."""
    return url.startswith("sqlite") and (
        url == "sqlite://" or url.split(":///", 1)[-1] in ("", ":memory:")
    )


def make_engine(
    url: str,
    *,
    sqlite_write_heavy: bool = False,
    network_timeout: int | None = None,
    **kwargs: Any,
) -> Engine:
    """Create an engine; SQLite files get their folder created and sane pragmas.

    ``sqlite_write_heavy`` (a process that mostly inserts, like the exposure writer) gives each
    SQLite connection a 64 MiB page cache, so inserts into a large index mostly find their pages
    in memory, and checkpoints the write-ahead log every 20,000 pages instead of every 1,000, so
    fewer commits pay for copying pages back. Other engines keep SQLite's defaults.

    ``pool_size`` and ``max_overflow`` size the connection pool; they are ignored for an
    in-memory SQLite database, which has no pool to size.

    ``network_timeout`` (seconds, PostgreSQL only) bounds how long opening a connection may
    take and how long data sent to the server may stay unacknowledged (libpq's
    ``connect_timeout`` and ``tcp_user_timeout``): a server that stops answering without
    refusing — a dropped route, a failover to a new address — fails the call instead of
    holding it for the operating system's TCP timeouts (minutes).
    """
    if url.startswith("sqlite"):
        if sqlite_in_memory(url):  # one connection: no pool to size
            kwargs.pop("pool_size", None)
            kwargs.pop("max_overflow", None)
        else:
            Path(url.split(":///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if sqlite_write_heavy:
            event.listen(engine, "connect", _sqlite_write_heavy)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if network_timeout is not None and url.startswith("postgresql"):
        kwargs["connect_args"] = {
            "connect_timeout": network_timeout,
            "tcp_user_timeout": network_timeout * 1000,  # milliseconds
            **kwargs.get("connect_args", {}),
        }
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
