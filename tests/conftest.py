"""Shared fixtures: a migrated database on SQLite always, and on PostgreSQL when configured.

Set ``FINREC_TEST_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) to
run every database test on PostgreSQL too. Each xdist worker gets its own PostgreSQL database so
parallel runs never share rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db import migrate
from app.db.base import Base
from app.db.session import make_engine, make_session_factory

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PG_URL = os.environ.get("FINREC_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _pg_worker_url(base_url: str, name: str) -> str:
    url = make_url(base_url)
    admin = make_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _pg_drop(base_url: str, name: str) -> None:
    admin = make_engine(
        make_url(base_url).render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated to head, once per backend per worker."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "finrec.db"
        url = f"sqlite:///{path}"
    else:
        assert PG_URL is not None
        # The pid keeps two concurrent suite runs against one server from dropping each
        # other's database; the finaliser removes it again.
        name = f"finrec_test_{_worker()}_{os.getpid()}"
        url = _pg_worker_url(PG_URL, name)
        request.addfinalizer(lambda: _pg_drop(PG_URL, name))
    migrate.upgrade(url)
    return url


@pytest.fixture
def database_url(migrated_url: str) -> Iterator[str]:
    """A migrated database, emptied after each test."""
    yield migrated_url
    engine = make_engine(migrated_url)
    with engine.begin() as conn:
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
