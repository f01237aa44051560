"""The fast lane answers exactly as the FastAPI route does: same status, headers and body for
plain and non-plain queries, errors, auth and overrides, and the same metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.api.fastlane import ROUTE_PATH, FastLane, customer_id_of
from app.main import create_app
from app.settings import Settings
from tests.app.services.recommend import bank
from tests.conftest import ADMIN_AUTH, EVENTS_AUTH, READ_AUTH

ADMIN = ADMIN_AUTH
UNKNOWN = {"Authorization": "Bearer frk_0123456789ab_not-a-key"}
NO_KEY: dict[str, str] = {}  # marker (compared by identity): sent without the client's key
PATH = "/v1/customers/{}/recommendations"
# Values that differ per request by design: ids, the date.
VARYING_HEADERS = {"x-recommendation-id", "x-request-id", "date"}

# (method, customer, query, headers, answered on the lane)
MATRIX: list[tuple[str, str, str, dict[str, str], bool]] = [
    ("GET", "C2", "", {}, True),
    ("GET", "C2", "k=3", {}, True),
    ("GET", "C3", "k=3&channel=app&placement=home", {}, True),
    ("GET", "C1", "channel=web&k=50", {}, True),
    ("GET", "C1", "k=2&k=4", {}, True),
    ("GET", "nobody", "k=3", {}, True),  # unknown customer: 404 problem from the lane
    ("GET", "C2", "explain=false", {}, False),
    ("GET", "C2", "channel=a%20b", {}, False),
    ("GET", "C2", "k=0", {}, False),
    ("GET", "C2", "k=51", {}, False),
    ("GET", "C2", "k=x", {}, False),
    ("GET", "C2", "placement=" + "p" * 65, {}, False),
    ("GET", "C" * 65, "", {}, False),  # id over the path limit: FastAPI's 422
    ("GET", "C2", "strategy=popularity", {}, False),  # override without admin: 403
    ("GET", "C2", "strategy=popularity", ADMIN, False),
    ("GET", "C2", "strategy=nope", ADMIN, False),  # unknown strategy: 404 problem
    ("GET", "C2", "k=3", NO_KEY, True),  # no key at all: 401
    ("GET", "nobody", "", NO_KEY, True),  # the guard answers before the customer is looked up
    ("GET", "C2", "strategy=popularity", NO_KEY, False),
    ("GET", "C2", "k=3", UNKNOWN, True),  # unknown key: 401 from the lane's guard
    ("GET", "C2", "k=3", {"Authorization": "Basic dXNlcg=="}, True),  # not a bearer key: 401
    ("GET", "C2", "k=3", EVENTS_AUTH, True),  # key without the read scope: 403
    ("GET", "C2", "k=3", ADMIN, True),  # admin holds every scope
    ("GET", "C2", "k=0", UNKNOWN, False),  # the guard answers before validation on both paths
    ("GET", "C2", "k=3", {"content-length": "2000000"}, False),  # body size limit: 413
    ("GET", "C2", "k=3", {"content-length": "0"}, False),  # any body: the stack decides
    ("GET", "C2", "placement=a%00b", {}, False),  # NUL in the query: the limit layer's 422
    ("GET", "C%002", "k=3", {}, False),  # NUL in the id: the limit layer's 422
    ("HEAD", "C2", "k=3", {}, False),
    ("POST", "C2", "k=3", {}, False),
]


def lane_of(app: FastAPI) -> FastLane | None:
    lane = getattr(app, "fast_lane", None)
    assert lane is None or isinstance(lane, FastLane)
    return lane


def settings(database_url: str, tmp_path: Path, fast_lane: bool) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=tmp_path,
        fast_lane=fast_lane,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def clients(
    database_url: str,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> Iterator[tuple[TestClient, TestClient]]:
    bank.seed(session_factory)
    bank.publish(session_factory, bank.fit_popularity(), tmp_path / "pop")
    with (
        TestClient(create_app(settings(database_url, tmp_path, True)), headers=READ_AUTH) as lane,
        TestClient(create_app(settings(database_url, tmp_path, False)), headers=READ_AUTH) as full,
    ):
        yield lane, full


def comparable(response: Any) -> tuple[int, list[tuple[str, str]], Any]:
    # In order, as sent: the lane must not even reorder headers.
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in VARYING_HEADERS]
    body: Any = response.content
    if response.headers.get("content-type", "").endswith("json") and body:
        body = orjson.loads(body)
        if response.status_code == 200:
            assert response.headers["x-recommendation-id"] == body.pop("recommendation_id")
    return response.status_code, headers, body


def request(client: TestClient, method: str, url: str, headers: dict[str, str]) -> Any:
    if headers is not NO_KEY:
        return client.request(method, url, headers=headers)
    key = client.headers.pop("authorization")
    try:
        return client.request(method, url)
    finally:
        client.headers["authorization"] = key


def route_count(app: FastAPI, method: str, status: int) -> float:
    labels = {"method": method, "route": ROUTE_PATH, "status": str(status)}
    value = app.state.metrics.registry.get_sample_value(
        "finrec_http_request_duration_seconds_count", labels
    )
    return value or 0.0


def test_lane_and_route_answer_identically(clients: tuple[TestClient, TestClient]) -> None:
    lane, full = clients
    statuses: set[tuple[str, int]] = set()
    expected_on_lane = 0
    for method, customer, query, headers, on_lane in MATRIX:
        url = PATH.format(customer) + (f"?{query}" if query else "")
        before = lane_of(lane.app).answered if lane_of(lane.app) else 0  # type: ignore[arg-type]
        got = comparable(request(lane, method, url, headers))
        want = comparable(request(full, method, url, headers))
        assert got == want, (method, url)
        assert headers is not NO_KEY or want[0] == 401
        lane_layer = lane_of(lane.app)  # type: ignore[arg-type]
        assert lane_layer is not None
        assert lane_layer.answered - before == int(on_lane), (method, url)
        expected_on_lane += int(on_lane)
        statuses.add((method, want[0]))
    # The matrix covers success and each kind of refusal.
    assert {s for _, s in statuses} >= {200, 401, 403, 404, 405, 413, 422}
    assert lane_of(full.app) is None  # type: ignore[arg-type]
    # Requests the lane answered are counted under the route template, like the router's.
    for method, status in statuses:
        assert route_count(lane.app, method, status) == route_count(full.app, method, status)  # type: ignore[arg-type]
    assert route_count(lane.app, "GET", 200) >= 5  # type: ignore[arg-type]


def test_lane_records_exposures_like_the_route(clients: tuple[TestClient, TestClient]) -> None:
    lane, full = clients
    for client in (lane, full):
        assert client.get(PATH.format("C2") + "?k=3&placement=home").status_code == 200
        client.app.state.exposures.flush()  # type: ignore[attr-defined]
        assert client.app.state.exposures.written == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "customer"),
    [
        ("/v1/customers/C1/recommendations", "C1"),
        ("/v1/customers//recommendations", None),
        ("/v1/customers/a/b/recommendations", None),
        ("/v1/customers/C1/recommendations/", None),
        ("/v1/customers/C1/similar", None),
        ("/v1/customers/" + "x" * 64 + "/recommendations", "x" * 64),
        ("/v1/customers/" + "x" * 65 + "/recommendations", None),
    ],
)
def test_customer_id_of(path: str, customer: str | None) -> None:
    assert customer_id_of(path) == customer


def test_unexpected_errors_are_the_same_500(
    database_url: str,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    test_keys: dict[str, dict[str, str]],
) -> None:
    bank.seed(session_factory)

    async def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.api.recommendations.recommend_for_customer", broken)
    answers = []
    for fast_lane in (True, False):
        app = create_app(settings(database_url, tmp_path, fast_lane))
        with TestClient(app, raise_server_exceptions=False, headers=READ_AUTH) as client:
            answers.append(comparable(client.get(PATH.format("C2") + "?k=3")))
            assert route_count(app, "GET", 500) == 1
    assert answers[0] == answers[1] and answers[0][0] == 500


def test_lane_sends_the_routes_bytes(clients: tuple[TestClient, TestClient]) -> None:
    # Byte for byte, not only the same JSON: key order, float formatting and every header in
    # order (content-length included); only the recommendation id differs by design.
    lane, full = clients
    for query in ("", "k=3", "k=3&channel=app&placement=home"):
        url = PATH.format("C2") + (f"?{query}" if query else "")
        answers = []
        for client in (lane, full):
            response = client.get(url)
            assert response.status_code == 200
            rid = response.headers["x-recommendation-id"].encode()
            headers = [
                (k, rid_free(v, rid))
                for k, v in response.headers.raw
                if k.lower() not in (b"date", b"x-request-id")
            ]
            answers.append((headers, response.content.replace(rid, b"RID")))
        assert answers[0] == answers[1], url


def rid_free(value: bytes, rid: bytes) -> bytes:
    return value.replace(rid, b"RID")


def test_lane_parses_each_query_string_once(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.api import fastlane

    calls: list[bytes] = []
    real = fastlane.plain_request

    def counting(raw: bytes, default_k: int) -> Any:
        calls.append(raw)
        return real(raw, default_k)

    monkeypatch.setattr(fastlane, "plain_request", counting)
    monkeypatch.setattr(fastlane, "_QUERIES", 2)
    lane, _ = clients
    layer = lane_of(lane.app)  # type: ignore[arg-type]
    assert layer is not None
    before = layer.answered
    for query in ("k=3", "k=3", "k=4", "k=3", "k=5", "explain=false", "explain=false"):
        assert lane.get(PATH.format("C2") + f"?{query}").status_code == 200
    # Parsed once per distinct string while remembered; the oldest is forgotten past the bound.
    assert calls == [b"k=3", b"k=4", b"k=5", b"explain=false"]
    assert len(layer._queries) == 2
    assert layer.answered - before == 5  # explain=false is not plain: FastAPI answered it
