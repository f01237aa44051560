"""Event batches: per-event validation, idempotency on event_id, holdings from holding events."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.jobs.importer.rules import content_event_ids
from app.schemas.events import MAX_EVENTS_PER_BATCH
from tests.app.api.conftest import ADMIN
from tests.conftest import EVENTS_AUTH

WHEN = "2026-03-01T10:00:00+00:00"


@pytest.fixture
def bank(client: TestClient) -> TestClient:
    client.put("/v1/customers/c-1", json={"segment": "mass"}, headers=ADMIN)
    for pid in ("p-1", "p-2"):
        body = {"name": pid, "category": "fund", "risk_level": "R1"}
        client.put(f"/v1/products/{pid}", json=body, headers=ADMIN)
    return client


def event(**overrides: Any) -> dict[str, Any]:
    base = {"customer_id": "c-1", "product_id": "p-1", "event_type": "click", "occurred_at": WHEN}
    return {**base, **overrides}


def post(client: TestClient, *events: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/events", json={"events": list(events)}, headers=EVENTS_AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_each_event_gets_its_own_outcome(bank: TestClient) -> None:
    body = post(
        bank,
        event(event_id="e-1", recommendation_id="r-1"),
        event(event_id="e-2", event_type="teleport"),
        event(event_id="e-3", customer_id="ghost", product_id="nothing"),
        event(event_id="e-4", occurred_at="yesterday"),
        event(event_id="e-1"),
        {"event_id": "e-6"},
        "not an event",
        event(event_id="e-8", value=True, colour="red"),
    )
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (1, 1, 6)
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "duplicate"),
        (5, "rejected"),
        (6, "rejected"),
        (7, "rejected"),
    ]
    errors = {r["index"]: {e["field"] for e in r["errors"]} for r in body["results"]}
    assert errors[1] == {"event_type"}
    assert errors[2] == {"customer_id", "product_id"}
    assert errors[3] == {"occurred_at"}
    assert {"customer_id", "product_id", "event_type", "occurred_at"} <= errors[5]
    assert errors[6] == {"event"}
    assert errors[7] == {"value", "colour"}


def test_resending_a_batch_adds_nothing(bank: TestClient) -> None:
    batch = [event(event_id="e-1"), event(event_type="view"), event(occurred_at=1772359200)]
    first = post(bank, *batch)
    assert first["accepted"] == 3
    second = post(bank, *batch)
    assert (second["accepted"], second["duplicate"]) == (0, 3)
    # Without an event_id the content hash is the key, and it is stable across resends.
    assert [r["event_id"] for r in first["results"]] == [r["event_id"] for r in second["results"]]


def test_the_same_instant_in_two_notations_is_one_event(bank: TestClient) -> None:
    body = post(bank, event(occurred_at="2026-03-01T10:00:00Z"), event(occurred_at=1772359200))
    assert (body["accepted"], body["duplicate"]) == (1, 1)


def test_events_in_the_future_are_rejected(bank: TestClient) -> None:
    body = post(bank, event(occurred_at="2099-01-01T00:00:00Z"))
    assert body["results"][0]["errors"][0]["field"] == "occurred_at"


def test_holding_events_record_a_holding(bank: TestClient) -> None:
    assert bank.get("/v1/customers/c-1").json()["holdings"] == []
    post(bank, event(event_type="purchase", product_id="p-2"), event(event_type="click"))
    assert bank.get("/v1/customers/c-1").json()["holdings"] == ["p-2"]
    post(bank, event(event_type="hold", product_id="p-2", occurred_at="2026-03-02T00:00:00Z"))
    assert bank.get("/v1/customers/c-1").json()["holdings"] == ["p-2"]


def test_batch_size_is_bounded(bank: TestClient) -> None:
    empty = bank.post("/v1/events", json={"events": []}, headers=EVENTS_AUTH)
    assert empty.status_code == 422
    assert "events" in empty.json()["detail"]
    too_many = bank.post(
        "/v1/events",
        json={"events": [event()] * (MAX_EVENTS_PER_BATCH + 1)},
        headers=EVENTS_AUTH,
    )
    assert too_many.status_code == 422
    assert "events" in too_many.json()["detail"]


def test_events_without_an_id_get_the_import_content_hash(bank: TestClient) -> None:
    body = post(bank, event(event_type="VIEW", value=2.5, channel="app"))
    [result] = body["results"]
    [expected] = content_event_ids(
        pd.Series(["c-1"]),
        pd.Series(["p-1"]),
        pd.Series(["view"]),
        pd.Series(pd.to_datetime([WHEN], utc=True)).astype("datetime64[us, UTC]"),
        pd.Series([2.5]),
        pd.Series(["app"]),
    )
    assert result["event_id"] == expected


def test_a_repeat_of_a_rejected_event_is_judged_on_its_own(bank: TestClient) -> None:
    body = post(bank, event(event_id="e-1", event_type="teleport"), event(event_id="e-1"))
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
