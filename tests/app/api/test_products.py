"""The product catalogue over the API: browse, admin upsert, lifecycle transitions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.api.conftest import ADMIN


def product(**overrides: Any) -> dict[str, Any]:
    return {"name": "Fixed deposit 12m", "category": "deposit", "risk_level": "R1", **overrides}


def test_admin_creates_and_replaces_a_product(client: TestClient) -> None:
    created = client.put("/v1/products/p-1", json=product(tags=["fixed"]), headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["status"] == "active"
    replaced = client.put("/v1/products/p-1", json=product(name="Deposit 12m"), headers=ADMIN)
    assert replaced.status_code == 200
    read = client.get("/v1/products/p-1").json()
    assert (read["name"], read["tags"], read["status"]) == ("Deposit 12m", [], "active")


def test_list_filters_and_pages(client: TestClient) -> None:
    for pid, category, risk in [("a", "fund", "R3"), ("b", "deposit", "R1"), ("c", "fund", "R4")]:
        client.put(
            f"/v1/products/{pid}", json=product(category=category, risk_level=risk), headers=ADMIN
        )
    page = client.get("/v1/products", params={"category": "fund", "limit": 1}).json()
    assert page["count"] == 2
    assert [p["product_id"] for p in page["data"]] == ["a"]
    second = client.get("/v1/products", params={"category": "fund", "limit": 1, "offset": 1})
    assert [p["product_id"] for p in second.json()["data"]] == ["c"]
    assert client.get("/v1/products", params={"risk_level": "R1"}).json()["count"] == 1


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (["active", "suspended", "active", "retired"], True),
        (["draft", "active"], True),
        (["draft", "retired"], True),
        (["active", "draft"], False),
        (["active", "retired", "active"], False),
        (["draft", "suspended"], False),
    ],
)
def test_status_transitions(client: TestClient, path: list[str], allowed: bool) -> None:
    first, *rest = path
    assert (
        client.put("/v1/products/p", json=product(status=first), headers=ADMIN).status_code == 201
    )
    codes = [
        client.patch("/v1/products/p/status", json={"status": s}, headers=ADMIN).status_code
        for s in rest
    ]
    if allowed:
        assert codes == [200] * len(rest)
        assert client.get("/v1/products/p").json()["status"] == path[-1]
    else:
        assert codes[-1] == 409
        assert all(code == 200 for code in codes[:-1])


def test_refused_transition_is_a_clear_problem(client: TestClient) -> None:
    client.put("/v1/products/p", json=product(), headers=ADMIN)
    client.patch("/v1/products/p/status", json={"status": "retired"}, headers=ADMIN)
    response = client.put("/v1/products/p", json=product(status="active"), headers=ADMIN)
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/invalid-status-transition")
    assert "retired" in problem["detail"]
    assert client.get("/v1/products/p").json()["status"] == "retired"


def test_new_product_cannot_start_suspended(client: TestClient) -> None:
    response = client.put("/v1/products/p", json=product(status="suspended"), headers=ADMIN)
    assert response.status_code == 409
    assert client.get("/v1/products/p").status_code == 404


def test_writes_need_admin(client: TestClient) -> None:
    assert client.put("/v1/products/p", json=product()).status_code == 403
    client.put("/v1/products/p", json=product(), headers=ADMIN)
    response = client.patch("/v1/products/p/status", json={"status": "suspended"})
    assert response.status_code == 403
    assert response.json()["type"].endswith("/insufficient-scope")
    assert client.get("/v1/products/p").json()["status"] == "active"


def test_unknown_product_and_bad_values(client: TestClient) -> None:
    missing = client.patch("/v1/products/nope/status", json={"status": "active"}, headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/product-not-found")
    bad = client.put("/v1/products/p", json=product(risk_level="R7"), headers=ADMIN)
    assert bad.status_code == 422
    assert "risk_level" in bad.json()["detail"]
    assert client.get("/v1/products", params={"limit": 0}).status_code == 422


def test_suspended_product_leaves_recommendations_on_the_next_request(client: TestClient) -> None:
    client.put(
        "/v1/customers/c-1",
        json={"risk_class": "C5", "risk_assessed_at": "2026-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    for pid in ("p-1", "p-2", "p-3"):
        client.put(f"/v1/products/{pid}", json=product(name=pid), headers=ADMIN)
    catalog = client.app.state.catalog  # type: ignore[attr-defined]
    assert catalog.current.active[catalog.current.index["p-1"]]

    client.patch("/v1/products/p-1/status", json={"status": "suspended"}, headers=ADMIN)
    assert not catalog.current.active[catalog.current.index["p-1"]]
    served = client.get("/v1/customers/c-1/recommendations", params={"k": 3})
    assert served.status_code == 200, served.text
    assert "p-1" not in {item["product_id"] for item in served.json()["items"]}
