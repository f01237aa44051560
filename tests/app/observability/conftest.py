"""A served bank (the literal serving bank, popularity model active) behind a test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings
from tests.app.services.recommend import bank
from tests.conftest import ADMIN_AUTH


@pytest.fixture
def obs_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=tmp_path,
        exposure_writer="thread",  # no child process to start and stop per test
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def served_bank(session_factory: sessionmaker[Session], tmp_path: Path) -> str:
    """Seed the bank and activate a popularity model; returns its version."""
    bank.seed(session_factory)
    return bank.publish(session_factory, bank.fit_popularity(), tmp_path / "pop")


@pytest.fixture
def obs_client(
    obs_settings: Settings, served_bank: str, test_keys: dict[str, dict[str, str]]
) -> Iterator[TestClient]:
    """Requests carry the admin key: it reads recommendations and /metrics alike."""
    app = create_app(obs_settings)
    with TestClient(app, raise_server_exceptions=False, headers=ADMIN_AUTH) as client:
        yield client
