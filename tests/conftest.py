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


# ---- API keys ---------------------------------------------------------------------------------
# Fixed keys, stored the way ``finrec keys create`` stores them (salted hash only), so a test can
# keep a module-level headers constant and still go through the real verification.
TEST_TOKENS = {
    "admin": "frk_a00000000001_test-admin-secret",
    "recommendations:read": "frk_b00000000002_test-read-secret",
    "events:write": "frk_c00000000003_test-events-secret",
}
ADMIN_AUTH = {"Authorization": f"Bearer {TEST_TOKENS['admin']}"}
READ_AUTH = {"Authorization": f"Bearer {TEST_TOKENS['recommendations:read']}"}
EVENTS_AUTH = {"Authorization": f"Bearer {TEST_TOKENS['events:write']}"}


def seed_test_keys(database_url: str) -> None:
    """Store the fixed test keys (one per scope) unless they are there already."""
    from app.db.models import ApiKey
    from app.services.keys import hash_secret, split_token

    eng = make_engine(database_url)
    with make_session_factory(eng)() as session:
        for scope, token in TEST_TOKENS.items():
            parts = split_token(token)
            assert parts is not None
            key_id, secret = parts
            if session.get(ApiKey, key_id) is None:
                salt = "5a" * 16
                session.add(
                    ApiKey(
                        id=key_id,
                        name=f"test-{scope.replace(':', '-')}",
                        scopes=scope,
                        salt=salt,
                        hash=hash_secret(salt, secret),
                    )
                )
        session.commit()
    eng.dispose()


@pytest.fixture
def test_keys(database_url: str) -> dict[str, dict[str, str]]:
    """The fixed test keys stored in this test's database: ``Authorization`` headers by scope."""
    seed_test_keys(database_url)
    return {scope: {"Authorization": f"Bearer {token}"} for scope, token in TEST_TOKENS.items()}


@pytest.fixture
def admin_headers(test_keys: dict[str, dict[str, str]]) -> dict[str, str]:
    return test_keys["admin"]


@pytest.fixture
def read_headers(test_keys: dict[str, dict[str, str]]) -> dict[str, str]:
    return test_keys["recommendations:read"]


@pytest.fixture
def events_headers(test_keys: dict[str, dict[str, str]]) -> dict[str, str]:
    return test_keys["events:write"]
