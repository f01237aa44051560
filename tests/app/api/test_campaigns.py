"""Campaigns over HTTP: admin CRUD, problem+json refusals, and what the next list serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings
from tests.app.services.recommend import bank
from tests.conftest import ADMIN_AUTH, READ_AUTH

RISK = {p[0]: int(p[3][1]) for p in bank.PRODUCTS}
ACTIVE = {p[0] for p in bank.PRODUCTS if p[4] == "active"}
# The highest product risk level each literal customer may be offered (expired or missing
# assessments allow R1 only).
CEILING = {"C1": 1, "C2": 3, "C3": 5, "C4": 1, "C5": 1, "C6": 4, "C7": 2}


@pytest.fixture
def client(
    database_url: str,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> Iterator[TestClient]:
    bank.seed(session_factory)
    bank.publish(session_factory, bank.fit_popularity(), tmp_path / "pop")
    settings = Settings(
        environment="test", database_url=database_url, artifact_dir=tmp_path, _env_file=None
    )  # type: ignore[call-arg]
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "spring", "product_id": "P10", **fields}
    response = client.post("/v1/campaigns", json=body, headers=ADMIN_AUTH)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def items(client: TestClient, customer: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(
        f"/v1/customers/{customer}/recommendations", params={"k": 5, **params}, headers=READ_AUTH
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


def promoted(found: list[dict[str, Any]]) -> dict[str, int]:
    """Product id -> rank of every item labelled as a promotion."""
    return {
        i["product_id"]: i["rank"]
        for i in found
        if "promotion" in [r["code"] for r in i["reasons"]]
    }


def test_create_read_list_update_and_end(client: TestClient) -> None:
    made = create(client, boost=1.5, placement="home", ends_at="2099-01-01T00:00:00Z")
    assert made["status"] == "live" and made["pin_rank"] is None
    assert client.get(f"/v1/campaigns/{made['id']}", headers=ADMIN_AUTH).json() == made
    other = create(client, product_id="P09", pin_rank=2)

    listed = client.get("/v1/campaigns", headers=ADMIN_AUTH).json()
    assert listed["count"] == 2 and [c["id"] for c in listed["data"]] == [other["id"], made["id"]]
    by_product = client.get("/v1/campaigns", params={"product_id": "P09"}, headers=ADMIN_AUTH)
    assert [c["id"] for c in by_product.json()["data"]] == [other["id"]]
    by_place = client.get("/v1/campaigns", params={"placement": "email"}, headers=ADMIN_AUTH)
    assert [c["id"] for c in by_place.json()["data"]] == [other["id"]]  # every-placement one

    patched = client.patch(
        f"/v1/campaigns/{made['id']}",
        json={"enabled": False, "pin_rank": 1, "ends_at": None},
        headers=ADMIN_AUTH,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["status"], patched.json()["pin_rank"]) == ("disabled", 1)
    assert patched.json()["ends_at"] is None
    inactive = client.get("/v1/campaigns", params={"active": "false"}, headers=ADMIN_AUTH)
    assert [c["id"] for c in inactive.json()["data"]] == [made["id"]]

    ended = client.post(f"/v1/campaigns/{made['id']}/end", headers=ADMIN_AUTH)
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    # Ending keeps the record; nothing is deleted.
    assert client.get(f"/v1/campaigns/{made['id']}", headers=ADMIN_AUTH).status_code == 200
    assert client.delete(f"/v1/campaigns/{made['id']}", headers=ADMIN_AUTH).status_code == 405
    again = client.post(f"/v1/campaigns/{made['id']}/end", headers=ADMIN_AUTH)
    assert again.status_code == 409 and again.json()["type"].endswith("/campaign-ended")
    frozen = client.patch(f"/v1/campaigns/{made['id']}", json={"boost": 2}, headers=ADMIN_AUTH)
    assert frozen.status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "slug", "field"),
    [
        ({"product_id": "P10"}, 422, "validation-error", "body"),
        ({"product_id": "P10", "boost": -1}, 422, "validation-error", "boost"),
        ({"product_id": "P10", "boost": 11}, 422, "validation-error", "boost"),
        ({"product_id": "P10", "pin_rank": 0}, 422, "validation-error", "pin_rank"),
        ({"product_id": "P10", "pin_rank": 51}, 422, "validation-error", "pin_rank"),
        (
            {
                "product_id": "P10",
                "boost": 1,
                "starts_at": "2099-02-01T00:00:00Z",
                "ends_at": "2099-01-01T00:00:00Z",
            },
            422,
            "validation-error",
            "body",
        ),
        ({"product_id": "P10", "boost": 1, "ends_at": "2099-01-01T00:00:00"}, 422, "", "ends_at"),
        ({"product_id": "P10", "boost": 1, "ends_at": "2001-01-01T00:00:00Z"}, 422, "", None),
        ({"product_id": "P99", "pin_rank": 1}, 422, "unknown-product", None),
    ],
)
def test_refusals_are_problems(
    client: TestClient, body: dict[str, Any], status: int, slug: str, field: str | None
) -> None:
    response = client.post("/v1/campaigns", json={"name": "x", **body}, headers=ADMIN_AUTH)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["detail"]
    if slug:
        assert problem["type"].endswith("/" + slug)
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]]
    listed = client.get("/v1/campaigns", headers=ADMIN_AUTH).json()
    assert listed["count"] == 0  # nothing half-written


def test_unknown_campaign_and_bad_ids_are_problems(client: TestClient) -> None:
    missing = client.get("/v1/campaigns/999", headers=ADMIN_AUTH)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/campaign-not-found")
    assert (
        client.patch("/v1/campaigns/999", json={"boost": 1}, headers=ADMIN_AUTH).status_code == 404
    )
    assert client.get("/v1/campaigns/0", headers=ADMIN_AUTH).status_code == 422
    made = create(client, pin_rank=1)
    cleared = client.patch(
        f"/v1/campaigns/{made['id']}", json={"pin_rank": None}, headers=ADMIN_AUTH
    )
    assert cleared.status_code == 422 and cleared.json()["type"].endswith("/invalid-campaign")
    nulled = client.patch(f"/v1/campaigns/{made['id']}", json={"boost": None}, headers=ADMIN_AUTH)
    assert nulled.status_code == 422 and nulled.json()["type"].endswith("/validation-error")


def test_campaigns_need_the_admin_scope(client: TestClient) -> None:
    assert client.get("/v1/campaigns").status_code == 401
    refused = client.post("/v1/campaigns", json={"name": "x", "product_id": "P10", "boost": 1})
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    for method, url in (("GET", "/v1/campaigns"), ("POST", "/v1/campaigns/1/end")):
        wrong = client.request(method, url, headers=READ_AUTH)
        assert wrong.status_code == 403, (method, url)
        assert wrong.json()["type"].endswith("/insufficient-scope")
    assert client.get("/v1/campaigns", headers=ADMIN_AUTH).json() == {"data": [], "count": 0}


def test_a_pin_serves_at_once_labelled_and_ending_it_stops_it(client: TestClient) -> None:
    before = items(client, "C2")
    assert promoted(before) == {}
    made = create(client, pin_rank=1, product_id="P10")
    after = items(client, "C2")
    assert after[0]["product_id"] == "P10" and promoted(after) == {"P10": 1}
    client.post(f"/v1/campaigns/{made['id']}/end", headers=ADMIN_AUTH)
    assert promoted(items(client, "C2")) == {}


def test_a_boost_applies_only_to_its_placement_and_pauses_when_disabled(
    client: TestClient,
) -> None:
    made = create(client, product_id="P09", boost=10, placement="home")
    home = items(client, "C2", placement="home")
    assert promoted(home) == {"P09": 1}  # a full boost of 10 spreads tops the list
    assert promoted(items(client, "C2", placement="email")) == {}
    client.patch(f"/v1/campaigns/{made['id']}", json={"enabled": False}, headers=ADMIN_AUTH)
    assert promoted(items(client, "C2", placement="home")) == {}


def test_no_campaign_overrides_the_policy_gate(client: TestClient) -> None:
    # R5 and R4 funds, a held saver (C1 and C2 hold P01), a suspended card, a retired fund.
    for product in ("P07", "P06", "P01", "P12", "P11"):
        create(client, product_id=product, pin_rank=1, boost=10, name=f"push {product}")
    for customer, ceiling in CEILING.items():
        for item in items(client, customer, k=10):
            pid = item["product_id"]
            assert pid in ACTIVE, (customer, pid)
            assert RISK[pid] <= ceiling, (customer, pid)
            assert pid not in bank.HOLDINGS.get(customer, []), (customer, pid)
    # Where the gate allows it, the same campaign does serve: C5 may have the R1 saver P01.
    assert promoted(items(client, "C5")) == {"P01": 1}
