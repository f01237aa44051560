"""An API client on a migrated database (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

ADMIN = {"X-Finrec-Admin": "1"}


@pytest.fixture
def api_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=tmp_path / "artifacts",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings), raise_server_exceptions=False) as test_client:
        yield test_client
