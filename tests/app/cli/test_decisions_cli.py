"""``finrec decisions``: show a customer's records, prune old ones, refuse bad input cleanly."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.db.models import Customer, Exposure
from tests.app.services.test_decisions import log_rows

runner = CliRunner()
AGES = [900, 30, 1]  # days; the default retention is 400


@pytest.fixture
def env(
    database_url: str, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINREC_DATABASE_URL", database_url)
    with session_factory() as session, session.begin():
        session.add(Customer(customer_id="C1", features={}))
    # Ages count back from now: the prune measures retention from the real clock.
    log_rows(session_factory, "C1", AGES, now=datetime.now(UTC))


@pytest.mark.usefixtures("env")
def test_show_lists_items_reasons_and_removals() -> None:
    result = runner.invoke(cli, ["decisions", "show", "C1", "--limit", "2"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "C1-2" in out and "C1-1" in out and "C1-0" not in out
    assert "P9 (suitability)" in out and "popular" in out and "--cursor" in out
    as_json = runner.invoke(cli, ["decisions", "show", "C1", "--json"])
    body = json.loads(as_json.stdout)
    assert [r["recommendation_id"] for r in body["data"]] == ["C1-2", "C1-1", "C1-0"]


@pytest.mark.usefixtures("env")
def test_show_refuses_unknown_customers_and_bad_times() -> None:
    unknown = runner.invoke(cli, ["decisions", "show", "nobody"])
    assert unknown.exit_code == 3 and "no customer" in unknown.output
    bad = runner.invoke(cli, ["decisions", "show", "C1", "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
    cursor = runner.invoke(cli, ["decisions", "show", "C1", "--cursor", "zz"])
    assert cursor.exit_code == 2 and "cursor" in cursor.output


@pytest.mark.usefixtures("env")
def test_prune_dry_run_then_for_real(session_factory: sessionmaker[Session]) -> None:
    dry = runner.invoke(cli, ["decisions", "prune", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["records"] == 1
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Exposure)) == 3
    done = runner.invoke(cli, ["decisions", "prune"])
    assert done.exit_code == 0 and "deleted 1 decision records" in done.output
    shorter = runner.invoke(cli, ["decisions", "prune", "--days", "7"])
    assert "deleted 1 decision records" in shorter.output
    with session_factory() as session:
        left = session.scalars(select(Exposure.recommendation_id)).all()
    assert left == ["C1-2"]
