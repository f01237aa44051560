"""Planted customer values must appear in no log line, whatever path the request takes.

Recognisable values (every one contains ``ZQX``) are imported, served, posted as events,
upserted, sent in invalid requests and pushed through a failing exposure flush, against a real
uvicorn server, with every logger at DEBUG. Everything written to stdout and stderr is then
scanned. The control test plants a leak on purpose and checks the scan finds it, so the scan
cannot pass by capturing nothing.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.jobs.importer import ImportKind, ImportOptions, run_import
from app.main import create_app
from app.observability.logging import configure_logging
from app.services import customers as customer_service
from app.services.exposures import ExposureLog
from app.services.recommend.flow import exposure_row
from app.settings import Settings
from tests.app.observability.server import running
from tests.app.services.recommend import bank
from tests.conftest import ADMIN_AUTH, seed_test_keys

MARK = "zqx"  # every planted value contains it; nothing else in the logs does
CUSTOMER = "ZQX-CUST-7731"
OTHER = "ZQX-CUST-7732"
GHOST = "ZQX-GHOST-5150"
SEGMENT = "zqx-segment-marguerite"
NICKNAME = "ZQX-Nickname-Beaumont"


def planted_customers_csv(path: Path) -> Path:
    rows = [
        {"customer_id": CUSTOMER, "segment": SEGMENT, "risk_class": "C3", "nickname": NICKNAME},
        {"customer_id": OTHER, "segment": SEGMENT, "risk_class": "ZQX-BAD", "nickname": NICKNAME},
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def settings_for(database_url: str, tmp_path: Path, *, log_json: bool) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=tmp_path,
        log_json=log_json,
        log_level="DEBUG",
        _env_file=None,  # type: ignore[call-arg]
    )


def exercise(base: str, app_state: object, engine: Engine) -> str:
    """Every customer-facing path with planted values; returns a served recommendation id."""
    with httpx.Client(base_url=base, timeout=30, headers=ADMIN_AUTH) as http:
        served = http.get(f"/v1/customers/{CUSTOMER}/recommendations", params={"k": 3})
        assert served.status_code == 200, served.text
        assert http.get(f"/v1/customers/{GHOST}/recommendations").status_code == 404
        long_id = f"{CUSTOMER}-{'x' * 80}"
        assert http.get(f"/v1/customers/{long_id}/recommendations").status_code == 422
        bad_query = {"k": "ZQX-k", "channel": f"ZQX-{'c' * 40}"}
        assert http.get(f"/v1/customers/{CUSTOMER}/recommendations", params=bad_query).status_code
        profile = {
            "segment": SEGMENT,
            "risk_class": "C2",
            "risk_assessed_at": "2026-01-01T00:00:00+00:00",
            "features": {"nickname": NICKNAME},
        }
        assert http.put(f"/v1/customers/{CUSTOMER}", json=profile).status_code in (200, 201)
        assert http.put(f"/v1/customers/{CUSTOMER}", json={"risk_class": "ZQX-C9"}).status_code
        assert http.put(f"/v1/customers/{CUSTOMER}", json={"zqx_extra": NICKNAME}).status_code
        assert http.get(f"/v1/customers/{CUSTOMER}").status_code == 200
        assert http.get(f"/v1/customers/{GHOST}").status_code == 404
        event = {
            "customer_id": CUSTOMER,
            "product_id": "P01",
            "event_type": "click",
            "occurred_at": "2026-11-01T10:00:00Z",
            "recommendation_id": served.json()["recommendation_id"],
        }
        bad_event = {**event, "event_type": "ZQX-type", "customer_id": GHOST}
        posted = http.post("/v1/events", json={"events": [event, bad_event]})
        assert posted.status_code == 200, posted.text
        assert http.post("/v1/events", json={"events": [{"customer_id": GHOST}]}).status_code
        assert http.post("/v1/events", content=b'{"events": [ZQX-not-json').status_code
        # A failing exposure flush: the database error names the customers it tried to write.
        failing_flush(app_state.session_factory, engine)  # type: ignore[attr-defined]
        return str(served.json()["recommendation_id"])


def failing_flush(session_factory: sessionmaker[Session], engine: Engine) -> None:
    """Write a planted exposure row while its table is away, then again once it is back."""
    exposures = ExposureLog(session_factory)
    exposures.record(
        exposure_row(
            "0" * 32,
            CUSTOMER,
            "popularity",
            None,
            "fallback",
            True,
            "app",
            SEGMENT,
            None,
            None,
            b"[]",
            datetime.now(UTC),
        )
    )
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE exposures RENAME TO exposures_away"))
    try:
        assert exposures.flush() == 0 and exposures.pending == 1
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE exposures_away RENAME TO exposures"))
    assert exposures.flush() == 1


@pytest.fixture
def planted(
    database_url: str,
    session_factory: sessionmaker[Session],
    engine: Engine,
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> Iterator[None]:
    bank.seed(session_factory)
    bank.publish(session_factory, bank.fit_popularity(), tmp_path / "pop")
    yield
    configure_logging()  # leave the default set-up for later tests


def run_scenario(
    database_url: str, engine: Engine, tmp_path: Path, *, log_json: bool, as_finrec_serve: bool
) -> str:
    settings = settings_for(database_url, tmp_path, log_json=log_json)
    configure_logging(settings.log_level, json=log_json)  # as `finrec serve` does first
    result = run_import(
        engine,
        settings,
        ImportKind.CUSTOMERS,
        planted_customers_csv(tmp_path / "customers.csv"),
        ImportOptions(skip_invalid=True),
    )
    assert (result.rows_written, result.rows_rejected) == (1, 1)
    seed_test_keys(database_url)
    apps = []

    def factory() -> object:
        apps.append(create_app(settings))
        return apps[-1]

    with running(factory, settings, as_finrec_serve=as_finrec_serve) as base:  # type: ignore[arg-type]
        return exercise(base, apps[0].state, engine)


def scan(output: str) -> list[str]:
    return [line for line in output.splitlines() if MARK in line.lower()]


@pytest.mark.parametrize("log_json", [True, False], ids=["json", "plain"])
@pytest.mark.parametrize("as_finrec_serve", [True, False], ids=["finrec-serve", "bare-uvicorn"])
def test_planted_customer_values_appear_in_no_log_line(
    planted: None,
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    log_json: bool,
    as_finrec_serve: bool,
) -> None:
    recommendation_id = run_scenario(
        database_url, engine, tmp_path, log_json=log_json, as_finrec_serve=as_finrec_serve
    )
    out, err = capfd.readouterr()
    output = out + err
    # The capture saw the server: access lines with the route template and the served list's id.
    assert "/v1/customers/{customer_id}/recommendations" in output
    assert recommendation_id in output
    assert "exposure flush failed" in output  # the database error was logged, values cut out
    assert scan(output) == [], "\n".join(scan(output))


def test_the_scan_finds_a_planted_leak(
    planted: None,
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Control: a stdlib ``log.info("... %s", customer_id)`` and a structlog field both show up."""
    original = customer_service.upsert_customer
    leaky = logging.getLogger("app.services.customers")

    def upsert_and_leak(session: Session, customer_id: str, *args: object, **kw: object) -> object:
        leaky.info("upserting customer %s", customer_id)
        structlog.get_logger("app.services.customers").debug("upsert", customer=customer_id)
        return original(session, customer_id, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(customer_service, "upsert_customer", upsert_and_leak)
    run_scenario(database_url, engine, tmp_path, log_json=True, as_finrec_serve=True)
    leaks = scan(capfd.readouterr().err)
    assert any("upserting customer" in line for line in leaks)
    assert any(json.loads(line).get("customer") == CUSTOMER for line in leaks)
