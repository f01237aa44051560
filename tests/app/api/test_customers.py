"""Customer profiles over the API: read, upsert, consent and risk rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.app.api.conftest import ADMIN

ASSESSED = "2026-01-15T09:30:00+00:00"


def test_put_creates_then_updates_and_get_reads_back(client: TestClient) -> None:
    body = {"segment": "mass", "age": 41, "risk_class": "C3", "risk_assessed_at": ASSESSED}
    created = client.put("/v1/customers/c-1", json=body, headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["risk_class"] == "C3"
    assert created.json()["consent_personalization"] is True

    updated = client.put("/v1/customers/c-1", json={"income_band": "high"}, headers=ADMIN)
    assert updated.status_code == 200

    read = client.get("/v1/customers/c-1").json()
    # Fields left out of the second PUT kept their values.
    assert (read["segment"], read["age"], read["income_band"]) == ("mass", 41, "high")
    assert read["risk_class"] == "C3"
    assert read["holdings"] == []


def test_consent_withdrawal_is_kept_by_later_partial_updates(client: TestClient) -> None:
    client.put("/v1/customers/c-2", json={"consent_personalization": False}, headers=ADMIN)
    client.put("/v1/customers/c-2", json={"segment": "affluent"}, headers=ADMIN)
    assert client.get("/v1/customers/c-2").json()["consent_personalization"] is False


def test_risk_assessment_expiry_is_reported(client: TestClient) -> None:
    old = (datetime.now(UTC) - timedelta(days=365 * 3)).isoformat()
    client.put(
        "/v1/customers/c-3", json={"risk_class": "C4", "risk_assessed_at": old}, headers=ADMIN
    )
    assert client.get("/v1/customers/c-3").json()["risk_assessment_current"] is False
    client.put(
        "/v1/customers/c-3", json={"risk_class": "C4", "risk_assessed_at": ASSESSED}, headers=ADMIN
    )
    assert client.get("/v1/customers/c-3").json()["risk_assessment_current"] is True


def test_clearing_the_risk_class_clears_its_date(client: TestClient) -> None:
    client.put(
        "/v1/customers/c-4", json={"risk_class": "C2", "risk_assessed_at": ASSESSED}, headers=ADMIN
    )
    read = client.put("/v1/customers/c-4", json={"risk_class": None}, headers=ADMIN).json()
    assert read["risk_class"] is None
    assert read["risk_assessed_at"] is None
    assert read["risk_assessment_current"] is False


def test_unknown_customer_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/v1/customers/nobody")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/customer-not-found")


def test_invalid_profile_names_the_field(client: TestClient) -> None:
    cases = [
        ({"risk_class": "C9", "risk_assessed_at": ASSESSED}, "risk_class"),
        ({"risk_class": "C2"}, "risk_assessed_at"),
        ({"risk_class": "C2", "risk_assessed_at": "2026-01-15T09:30:00"}, "risk_assessed_at"),
        ({"age": -1}, "age"),
        ({"consent_personalization": None}, "consent_personalization"),
        ({"nickname": "x"}, "nickname"),
    ]
    for body, field in cases:
        response = client.put("/v1/customers/c-5", json=body, headers=ADMIN)
        assert response.status_code == 422, body
        assert field in response.json()["detail"], (body, response.json())
    assert client.get("/v1/customers/c-5").status_code == 404


def test_future_assessment_is_refused(client: TestClient) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = client.put(
        "/v1/customers/c-6", json={"risk_class": "C2", "risk_assessed_at": future}, headers=ADMIN
    )
    assert response.status_code == 422
    assert "future" in response.text


def test_profile_changes_reach_the_serving_cache_at_once(client: TestClient) -> None:
    client.put(
        "/v1/customers/c-7", json={"risk_class": "C3", "risk_assessed_at": ASSESSED}, headers=ADMIN
    )
    profiles = client.app.state.profiles  # type: ignore[attr-defined]
    assert profiles.load("c-7").consent is True
    assert profiles.get("c-7") is not None

    client.put("/v1/customers/c-7", json={"consent_personalization": False}, headers=ADMIN)
    cached = profiles.get("c-7")
    assert cached is None or cached.consent is False
    assert profiles.load("c-7").consent is False
