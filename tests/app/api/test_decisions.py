"""GET /v1/customers/{id}/decisions: every served list is on record exactly as it was served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings
from tests.app.services.recommend import bank
from tests.conftest import ADMIN_AUTH, READ_AUTH


def serve_then_read(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> tuple[list[dict[str, Any]], TestClient]:
    bank.seed(session_factory)
    bank.publish(session_factory, bank.fit_popularity(), tmp_path / "pop")
    served = []
    with TestClient(create_app(settings), headers=READ_AUTH) as client:
        for cid, k in [("C1", 3), ("C2", 3), ("C2", 5), ("C6", 4), ("C3", 10), ("C2", 2)]:
            response = client.get(f"/v1/customers/{cid}/recommendations", params={"k": k})
            assert response.status_code == 200
            served.append(response.json())
    # Shutdown flushed the log; a fresh app reads it back.
    return served, TestClient(create_app(settings), headers=ADMIN_AUTH)


def test_records_match_the_served_responses(
    api_settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> None:
    served, reader = serve_then_read(api_settings, session_factory, tmp_path)
    with reader as client:
        records = {}
        for cid in ("C1", "C2", "C3", "C6"):
            body = client.get(f"/v1/customers/{cid}/decisions").json()
            records.update({r["recommendation_id"]: r for r in body["data"]})
        policy = client.app.state.recommendations.policy_version  # type: ignore[attr-defined]
    assert set(records) == {s["recommendation_id"] for s in served}
    for response in served:
        record = records[response["recommendation_id"]]
        for field in ("customer_id", "strategy", "model_version", "served_from", "degraded"):
            assert record[field] == response[field]
        assert (record["experiment"], record["variant"]) == (None, None)
        assert record["policy_version"] == policy
        assert [
            (i["product_id"], i["rank"], i["score"], i["reasons"]) for i in record["items"]
        ] == [
            (i["product_id"], i["rank"], i["score"], [r["code"] for r in i["reasons"]])
            for i in response["items"]
        ]
        served_ids = {i["product_id"] for i in response["items"]}
        assert not served_ids & {r["product_id"] for r in record["removed"]}
    c1 = next(records[s["recommendation_id"]] for s in served if s["customer_id"] == "C1")
    # C1 (class C1) holds P01: popular P04/P05/P06 are above its class, P01 is held.
    assert {(r["product_id"], r["rule"]) for r in c1["removed"]} >= {
        ("P01", "held"),
        ("P04", "suitability"),
    }
    assert c1["basis"] == "personalised" and c1["risk_class"] == 1
    c6 = next(records[s["recommendation_id"]] for s in served if s["customer_id"] == "C6")
    assert c6["basis"] == "non_personalised"


def test_paging_filters_scope_and_errors(
    api_settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> None:
    served, reader = serve_then_read(api_settings, session_factory, tmp_path)
    mine = [s["recommendation_id"] for s in served if s["customer_id"] == "C2"][::-1]
    with reader as client:
        url = "/v1/customers/C2/decisions"
        first = client.get(url, params={"limit": 2}).json()
        second = client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}).json()
        assert [r["recommendation_id"] for r in first["data"] + second["data"]] == mine
        assert second["next_cursor"] is None
        newest = first["data"][0]["served_at"]
        later = client.get(url, params={"since": newest}).json()["data"]
        assert [r["recommendation_id"] for r in later] == mine[:1]
        assert (
            client.get(url, params={"until": newest}).json()["data"][0]["recommendation_id"]
            == (mine[1])
        )

        missing = client.get("/v1/customers/nobody/decisions")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["type"].endswith("/customer-not-found")
        assert client.get(url, params={"cursor": "x"}).status_code == 422
        assert client.get(url, params={"since": "2026-01-01T00:00:00"}).status_code == 422  # naive
        assert client.get(url, params={"limit": 0}).status_code == 422
        assert client.get(url, headers=READ_AUTH).status_code == 403
        assert client.get(url, headers={"Authorization": ""}).status_code == 401
