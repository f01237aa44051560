"""An API client on a migrated database (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import ADMIN_AUTH, READ_AUTH

ADMIN = ADMIN_AUTH  # admin scope (implies every other)


@pytest.fixture
def api_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=tmp_path / "artifacts",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def client(api_settings: Settings, test_keys: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    """The app with the fixed test keys stored; requests carry the read-scope key unless a
    test sends another (``headers=ADMIN``, ``EVENTS_AUTH``)."""
    with TestClient(
        create_app(api_settings), raise_server_exceptions=False, headers=READ_AUTH
    ) as test_client:
        yield test_client
