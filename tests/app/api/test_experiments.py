"""Experiments over HTTP: admin life cycle, assignment, serving by arm, results from the logs."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from fastapi.testclient import TestClient
from scipy import stats
from sqlalchemy import create_engine, select

from app.db.models import Customer, Exposure, Interaction
from app.settings import Settings
from tests.app.api.conftest import ADMIN

WHEN = "2026-03-01T10:00:00+00:00"


def definition(key: str = "home-ab", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": key,
        "salt": f"{key}-salt",
        "traffic": 1.0,
        "placements": ["home"],
        "variants": [
            {"name": "control", "role": "control", "weight": 50, "strategy": "popularity"},
            {"name": "fusion", "role": "treatment", "weight": 50, "strategy": "fusion"},
        ],
    }
    return {**body, **overrides}


def create(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/experiments", json=definition(**overrides), headers=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def act(client: TestClient, key: str, action: str) -> Any:
    return client.post(f"/v1/experiments/{key}/{action}", headers=ADMIN)


def test_life_cycle_is_validated_and_recorded(client: TestClient) -> None:
    created = create(client)
    assert created["status"] == "draft"
    assert [v["share"] for v in created["variants"]] == [0.5, 0.5]
    assert client.post("/v1/experiments", json=definition()).status_code == 403
    duplicate = client.post("/v1/experiments", json=definition(), headers=ADMIN)
    assert duplicate.status_code == 409
    assert duplicate.json()["type"].endswith("/experiment-conflict")

    two_controls = definition("bad")
    two_controls["variants"][1]["role"] = "control"
    refused = client.post("/v1/experiments", json=two_controls, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/invalid-experiment")
    assert "exactly one" in refused.json()["detail"]
    zero = definition("zero")
    zero["variants"][0]["weight"] = 0
    assert client.post("/v1/experiments", json=zero, headers=ADMIN).status_code == 422

    arms = definition()["variants"] + [
        {"name": "holdout", "role": "holdout", "weight": 10, "strategy": "popularity"}
    ]
    patched = client.patch("/v1/experiments/home-ab", json={"variants": arms}, headers=ADMIN)
    assert patched.status_code == 200, patched.text
    assert len(patched.json()["variants"]) == 3
    assert act(client, "home-ab", "start").json()["status"] == "running"
    frozen = client.patch("/v1/experiments/home-ab", json={"salt": "other"}, headers=ADMIN)
    assert frozen.status_code == 409
    raised = client.patch("/v1/experiments/home-ab", json={"traffic": 0.5}, headers=ADMIN)
    assert raised.json()["traffic"] == 0.5
    assert act(client, "home-ab", "pause").json()["status"] == "paused"
    assert act(client, "home-ab", "pause").status_code == 409
    assert act(client, "home-ab", "start").json()["status"] == "running"
    assert act(client, "home-ab", "stop").json()["status"] == "stopped"
    assert act(client, "home-ab", "start").status_code == 409
    assert act(client, "missing", "start").status_code == 404

    changes = client.get("/v1/experiments/home-ab/changes", headers=ADMIN).json()["data"]
    assert [c["action"] for c in changes] == [
        "created",
        "updated",
        "start",
        "updated",
        "pause",
        "start",
        "stop",
    ]
    assert changes[3]["changes"] == {"traffic": [1.0, 0.5]}
    listed = client.get("/v1/experiments", params={"status": "stopped"}, headers=ADMIN).json()
    assert [e["key"] for e in listed["data"]] == ["home-ab"]


def test_overlapping_experiments_need_a_declaration(client: TestClient) -> None:
    create(client, key="first")
    create(client, key="second", placements=[])  # every placement: overlaps "home"
    create(client, key="elsewhere", placements=["offers"])
    assert act(client, "first", "start").status_code == 200
    clash = act(client, "second", "start")
    assert clash.status_code == 409 and "first" in clash.json()["detail"]
    assert act(client, "elsewhere", "start").status_code == 200
    for key in ("first", "second"):
        client.patch(f"/v1/experiments/{key}", json={"allow_overlap": True}, headers=ADMIN)
    # "first" is running, so its flag cannot change: the clash stands.
    assert act(client, "second", "start").status_code == 409
    act(client, "first", "stop")
    assert act(client, "second", "start").status_code == 409  # still clashes with "elsewhere"


def _bank(client: TestClient, n_customers: int) -> list[str]:
    for pid in ("p-1", "p-2", "p-3", "p-4"):
        body = {"name": pid, "category": "deposit", "risk_level": "R1"}
        assert client.put(f"/v1/products/{pid}", json=body, headers=ADMIN).status_code in (200, 201)
    ids = [f"cust-{i:03d}" for i in range(n_customers)]
    for cid in ids:
        assert client.put(
            f"/v1/customers/{cid}", json={"segment": "mass"}, headers=ADMIN
        ).status_code in (
            200,
            201,
        )
    client.app.state.catalog.refresh()  # type: ignore[attr-defined]
    return ids


def _events(served: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clicks on every second list, a purchase on every fifth, a second click on every fourth."""
    events = []
    for n, body in enumerate(served):
        base = {
            "customer_id": body["customer_id"],
            "product_id": body["items"][0]["product_id"],
            "occurred_at": WHEN,
            "recommendation_id": body["recommendation_id"],
        }
        if n % 2 == 0:
            events.append({**base, "event_id": f"click-{n}", "event_type": "click"})
        if n % 4 == 0:
            events.append({**base, "event_id": f"again-{n}", "event_type": "click"})
        if n % 5 == 0:
            events.append({**base, "event_id": f"buy-{n}", "event_type": "apply"})
    return events


def test_customers_are_served_by_their_arm_and_results_match_the_logs(
    client: TestClient, api_settings: Settings
) -> None:
    ids = _bank(client, 24)
    create(client)
    act(client, "home-ab", "start")

    served = []
    for cid in ids:
        assigned = client.get(f"/v1/experiments/home-ab/assignment/{cid}").json()
        assert assigned["enrolled"] and assigned["serving"]
        for _ in range(2):
            body = client.get(
                f"/v1/customers/{cid}/recommendations", params={"placement": "home", "k": 2}
            ).json()
            assert (body["experiment"], body["variant"]) == ("home-ab", assigned["variant"])
            served.append(body)
    outside = client.get(f"/v1/customers/{ids[0]}/recommendations", params={"placement": "x"})
    assert outside.json()["experiment"] is None
    client.app.state.exposures.flush()  # type: ignore[attr-defined]

    events = _events(served)
    first = client.post("/v1/events", json={"events": events}, headers=ADMIN).json()
    assert first["accepted"] == len(events)
    replay = client.post("/v1/events", json={"events": events}, headers=ADMIN).json()
    assert replay["duplicate"] == len(events)  # replayed events are stored once

    results = client.get("/v1/experiments/home-ab/results", headers=ADMIN).json()
    expected = _recompute(api_settings.database_url)
    by_name = {v["variant"]: v for v in results["variants"]}
    for name, (n, customers, clicks, conversions) in expected.items():
        row = by_name[name]
        assert (row["exposures"], row["customers"]) == (n, customers)
        assert (row["clicked_exposures"], row["converted_exposures"]) == (clicks, conversions)
        assert math.isclose(row["ctr"], clicks / n)
    assert sum(v["exposures"] for v in results["variants"]) == 2 * len(ids)
    control, fusion = expected["control"], expected["fusion"]
    ctr = by_name["fusion"]["comparisons"][0]
    p0, p1 = control[2] / control[0], fusion[2] / fusion[0]
    pooled = (control[2] + fusion[2]) / (control[0] + fusion[0])
    z = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / control[0] + 1 / fusion[0]))
    assert math.isclose(ctr["difference"], p1 - p0)
    assert math.isclose(ctr["p_value"], 2 * stats.norm.sf(abs(z)))
    chi2 = stats.chisquare([control[1], fusion[1]]).statistic
    assert math.isclose(results["srm"]["chi_square"], chi2)

    chart = client.get("/v1/experiments/home-ab/results/chart", headers=ADMIN)
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")
    missing = client.get("/v1/experiments/nope/results", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/experiment-not-found")


def _recompute(url: str) -> dict[str, tuple[int, int, int, int]]:
    """Per arm (exposures, customers, clicked, converted) straight from the raw tables."""
    engine = create_engine(url)
    with engine.connect() as conn:
        exposures = conn.execute(
            select(Exposure.recommendation_id, Exposure.customer_id, Exposure.variant).where(
                Exposure.experiment == "home-ab"
            )
        ).all()
        events = conn.execute(
            select(
                Interaction.recommendation_id, Interaction.event_type, Customer.customer_id
            ).join(Customer, Customer.id == Interaction.customer_pk)
        ).all()
    engine.dispose()
    kinds: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rid, kind, cid in events:
        kinds[(rid, cid)].add(kind)
    out: dict[str, list[Any]] = defaultdict(lambda: [0, set(), 0, 0])
    for rid, cid, variant in exposures:
        row = out[variant]
        row[0] += 1
        row[1].add(cid)
        row[2] += "click" in kinds[(rid, cid)]
        row[3] += bool(kinds[(rid, cid)] & {"apply", "purchase", "hold"})
    return {k: (v[0], len(v[1]), v[2], v[3]) for k, v in out.items()}
