"""GET /v1/customers/{id}/recommendations and /v1/products/{id}/similar over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Exposure
from app.main import create_app
from app.settings import Settings
from tests.app.services.recommend import bank
from tests.conftest import ADMIN_AUTH, READ_AUTH

RISK = {p[0]: int(p[3][1]) for p in bank.PRODUCTS}


@pytest.fixture
def rec_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test", database_url=database_url, artifact_dir=tmp_path, _env_file=None
    )  # type: ignore[call-arg]


@pytest.fixture
def client(
    rec_settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> Iterator[TestClient]:
    bank.seed(session_factory)
    bank.publish(session_factory, bank.fit_popularity(), tmp_path / "pop")
    with TestClient(create_app(rec_settings), headers=READ_AUTH) as test_client:
        yield test_client


def test_response_shape_and_header(client: TestClient) -> None:
    response = client.get("/v1/customers/C2/recommendations", params={"k": 3, "channel": "app"})
    assert response.status_code == 200
    body = response.json()
    assert response.headers["x-recommendation-id"] == body["recommendation_id"]
    assert body["customer_id"] == "C2"
    assert body["strategy"] == "popularity" and body["model_version"].startswith("popularity-")
    assert body["served_from"] == "live" and body["degraded"] is False
    assert body["experiment"] is None and body["variant"] is None
    assert [i["rank"] for i in body["items"]] == [1, 2, 3]
    item = body["items"][0]
    assert set(item) == {"product_id", "name", "category", "rank", "score", "reasons"}
    assert item["reasons"][0]["code"] == "popular_in_segment" and item["reasons"][0]["text"]
    assert all(RISK[i["product_id"]] <= 3 for i in body["items"])


def test_default_k_and_explain_false(client: TestClient) -> None:
    body = client.get("/v1/customers/C3/recommendations", params={"explain": "false"}).json()
    assert len(body["items"]) == 7  # everything C3 may see (fewer than the default 10)
    assert all(i["reasons"] == [] for i in body["items"])


def test_unknown_customer_is_a_typed_404(client: TestClient) -> None:
    response = client.get("/v1/customers/nobody/recommendations")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/customer-not-found")


@pytest.mark.parametrize("k", [0, 51, "x"])
def test_invalid_k_names_the_field(client: TestClient, k: object) -> None:
    response = client.get("/v1/customers/C1/recommendations", params={"k": k})
    assert response.status_code == 422
    assert "k" in response.json()["detail"]


@pytest.mark.parametrize(
    "query",
    ["k=3&channel=app&placement=home", "k=03", "channel=", "k=1&k=2", "other=%20x&k=2", ""],
)
def test_plain_and_full_query_parsing_agree(query: str) -> None:
    from app.api.recommendations import _plain_query
    from app.schemas.recommendations import RecommendationQuery

    plain = _plain_query(query.encode())
    full = RecommendationQuery.model_validate(
        dict(pair.partition("=")[::2] for pair in query.split("&") if pair)
    )
    assert plain is None or plain == full


@pytest.mark.parametrize("query", ["k=%31", "k=+5", "k=", "k", "channel=" + "x" * 33])
def test_unusual_queries_take_the_validated_path(client: TestClient, query: str) -> None:
    from pydantic import ValidationError
    from starlette.datastructures import QueryParams

    from app.api.recommendations import _plain_query
    from app.schemas.recommendations import RecommendationQuery

    assert _plain_query(query.encode()) is None
    try:
        RecommendationQuery.model_validate(dict(QueryParams(query)))
        expected = 200
    except ValidationError:
        expected = 422
    response = client.get(f"/v1/customers/C2/recommendations?{query}")
    assert response.status_code == expected, response.text
    if query == "k=%31":
        assert len(response.json()["items"]) == 1


def test_strategy_override_is_admin_only(client: TestClient) -> None:
    url = "/v1/customers/C2/recommendations"
    assert client.get(url, params={"strategy": "popularity"}).status_code == 403
    admin = ADMIN_AUTH
    ok = client.get(url, params={"strategy": "popularity"}, headers=admin)
    assert ok.status_code == 200 and ok.json()["strategy"] == "popularity"
    missing = client.get(url, params={"strategy": "als"}, headers=admin)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/strategy-not-found")


def test_customer_in_db_but_not_in_model_gets_cold_start(client: TestClient) -> None:
    body = client.get("/v1/customers/C7/recommendations", params={"k": 3}).json()
    assert body["served_from"] == "live" and len(body["items"]) == 3


def test_consent_change_applies_on_the_next_request(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    assert client.get("/v1/customers/C2/recommendations").json()["served_from"] == "live"
    with session_factory() as session, session.begin():
        session.execute(
            update(Customer)
            .where(Customer.customer_id == "C2")
            .values(consent_personalization=False)
        )
    client.app.state.profiles.invalidate("C2")  # type: ignore[attr-defined]
    body = client.get("/v1/customers/C2/recommendations").json()
    assert body["served_from"] == "fallback"
    assert {r["code"] for i in body["items"] for r in i["reasons"]} == {"non_personalised"}


def test_database_down_serves_degraded_fail_closed(client: TestClient) -> None:
    profiles = client.app.state.profiles  # type: ignore[attr-defined]
    profiles._session_factory = sessionmaker(
        bind=create_engine("sqlite:////nonexistent-dir/finrec.db")
    )
    response = client.get("/v1/customers/C3/recommendations")
    assert response.status_code == 200
    body = response.json()
    assert body["degraded"] is True and body["items"]
    assert all(RISK[i["product_id"]] == 1 for i in body["items"])


def test_similar_products(client: TestClient) -> None:
    assert client.get("/v1/products/nope/similar").status_code == 404
    anonymous = client.get("/v1/products/P05/similar", params={"k": 20}).json()
    shown = [i["product_id"] for i in anonymous["items"]]
    assert "P05" not in shown and shown
    assert all(RISK[p] <= 3 for p in shown)
    for_c1 = client.get("/v1/products/P05/similar", params={"customer_id": "C1"}).json()
    assert {i["product_id"] for i in for_c1["items"]} <= {"P02", "P03"}
    assert (
        client.get("/v1/products/P05/similar", params={"customer_id": "nobody"}).status_code == 404
    )


def test_health_and_exposures_flushed_on_shutdown(
    rec_settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> None:
    bank.seed(session_factory)
    with TestClient(create_app(rec_settings), headers=READ_AUTH) as test_client:
        assert test_client.get("/healthz").json() == {"status": "ok"}
        ready = test_client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["products"] == len(bank.PRODUCTS)
        served = test_client.get("/v1/customers/C2/recommendations").json()
        assert served["served_from"] == "fallback"  # no model registered: popularity fallback
    with session_factory() as session:
        rows = session.scalars(select(Exposure)).all()
        assert session.scalar(select(func.count()).select_from(Exposure)) == 1
    assert rows[0].recommendation_id == served["recommendation_id"]
    assert [i["product_id"] for i in rows[0].items] == [i["product_id"] for i in served["items"]]


def test_lane_messages_are_the_rendered_response() -> None:
    from datetime import UTC, datetime

    from app.api.recommendations import render, render_body, response_start
    from app.services.recommend.service import Item, Recommendation

    items = [
        Item(4, "P4", "Nämé", "fund", 1, 0.1234567, [{"code": "popular", "text": "x"}]),
        Item(9, "P9", "Other", "card", 2, 1e-7, []),
    ]
    result = Recommendation(
        "ab" * 16, "C1", "als", None, "live", True, items, datetime.now(UTC), "exp", "b"
    )
    body = render_body(result)
    response = render(result)
    start = response_start(result, body)
    assert body == response.body
    assert start == {
        "type": "http.response.start",
        "status": response.status_code,
        "headers": response.raw_headers,
    }


def test_pool_and_profile_reads_follow_the_settings(
    rec_settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> None:
    """The API's pool holds FINREC_DATABASE_POOL_SIZE connections; profile reads run at most
    FINREC_PROFILE_READ_CONCURRENCY at once (by default 2 on SQLite, 8 on a server), never
    more than the pool holds, and a burst of misses is served all the same."""
    bank.seed(session_factory)
    bank.publish(session_factory, bank.fit_popularity(), tmp_path / "pop")
    assert rec_settings.profile_reads_at_once == (2 if rec_settings.is_sqlite else 8)
    settings = rec_settings.model_copy(
        update={
            "database_pool_size": 3,
            "database_max_overflow": 1,
            "profile_read_concurrency": 6,
            "gc_step_seconds": 0.0,
        }
    )
    assert settings.profile_reads_at_once == 3  # capped at the pool
    with TestClient(create_app(settings), headers=READ_AUTH) as client:
        state = client.app.state  # type: ignore[attr-defined]
        assert state.engine.pool.size() == 3
        assert state.serving.profile_reads.total_tokens == 3
        assert getattr(state, "collector", None) is None  # 0: CPython's own schedule
        ids = ["C1", "C2", "C3", "C5", "C6", "C7"] * 4
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda c: client.get(f"/v1/customers/{c}/recommendations").status_code, ids
                )
            )
        assert codes == [200] * len(ids)
        assert state.engine.pool.checkedout() == 0


def test_the_collector_schedule_runs_by_default(client: TestClient) -> None:
    collector = client.app.state.collector  # type: ignore[attr-defined]
    assert collector.step_seconds == 1.0 and collector.full_seconds == 3600.0
