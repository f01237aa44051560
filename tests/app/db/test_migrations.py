"""Migrations match the models and go up and down cleanly on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import migrate
from app.db.base import Base
from app.db.session import make_engine


def test_no_drift_between_models_and_migrations(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    migrate.downgrade(database_url, "base")
    engine = make_engine(database_url)
    with engine.connect() as conn:
        remaining = set(inspect(conn).get_table_names()) - {"alembic_version"}
    assert remaining == set()
    assert migrate.current_revision(database_url) is None

    migrate.upgrade(database_url)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert {"customers", "products", "interactions", "holdings", "model_versions"} <= tables
    assert migrate.current_revision(database_url) is not None
