"""Hostile input: every request below is answered with a clear 4xx problem+json, never a 5xx,
and leaves every table as it was (``make hostile``; also part of ``make test``).

Ids, query values and bodies carry what an attacker or a broken client would send: oversized
and deeply nested bodies, huge, negative and non-numeric ``k``, unicode, right-to-left marks,
NUL and other control characters, very long strings, path traversal, SQL injection, malformed
JSON, wrong content types and duplicate keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.base import Base
from app.main import create_app
from app.settings import Settings
from tests.app.services.recommend import bank
from tests.conftest import ADMIN_AUTH, READ_AUTH

LONG = "x" * 10_000
# Strings no id should ever be: each goes into paths, query values and body fields.
NASTY = [
    "\x00",
    "C1\x00",
    "C1\x07\x1b[31m",
    "\u202eC1",  # right-to-left override
    "\u05dc\u05e7\u05d5\u05d7",  # Hebrew
    "顧客",
    "🏦" * 20,
    "\ufeff",
    "\ud7ff\ue000",
    LONG,
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "' OR '1'='1",
    "C1'; DROP TABLE customers; --",
    '" OR 1=1 --',
    "%00",
    "%2e%2e%2f",
    " ",
    "${jndi:ldap://127.0.0.1/a}",
]
BAD_K = [
    "100000000000000000000000000000",
    "51",
    "0",
    "-1",
    "-100000000000000000000",
    "abc",
    "1e3",
    "1.5",
    "",
    "NaN",
    "inf",
    "0x10",
    "٣",  # an Arabic-Indic digit: int() accepts it, the API must not
    "1\x00",
    LONG,
]
MAX_BODY = 4_096


@pytest.fixture
def hostile(
    database_url: str,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    test_keys: dict[str, dict[str, str]],
) -> Iterator[TestClient]:
    bank.seed(session_factory)
    bank.publish(session_factory, bank.fit_popularity(), tmp_path / "pop")
    settings = Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=tmp_path,
        max_body_bytes=MAX_BODY,
        _env_file=None,  # type: ignore[call-arg]
    )
    with TestClient(
        create_app(settings), raise_server_exceptions=False, headers=READ_AUTH
    ) as client:
        yield client


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


def assert_problem(response: Any, *allowed: int) -> None:
    """A 4xx (one of ``allowed`` when given) with an RFC 9457 body."""
    status = response.status_code
    assert 400 <= status < 500, (status, response.text[:300])
    if allowed:
        assert status in allowed, (status, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["type"].startswith("https://")


def send_all(client: TestClient, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    return [client.request(method, url, **kwargs) for method, url, kwargs in requests]


def path_id(value: str) -> str:
    return quote(value, safe="")


# ---- ids in paths ---------------------------------------------------------------------------


def test_nasty_ids_in_paths_are_4xx_and_store_nothing(hostile: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    for value in NASTY:
        pid = path_id(value)
        for response in send_all(hostile, requests_with_id(pid)):
            assert_problem(response)
    assert row_counts(engine) == before


def requests_with_id(pid: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("GET", f"/v1/customers/{pid}/recommendations", {}),
        ("GET", f"/v1/customers/{pid}", {}),
        ("GET", f"/v1/products/{pid}", {}),
        ("GET", f"/v1/products/{pid}/similar", {}),
        ("GET", f"/v1/models/{pid}", {"headers": ADMIN_AUTH}),
        ("GET", f"/v1/experiments/{pid}", {"headers": ADMIN_AUTH}),
        ("POST", f"/v1/models/{pid}/activate", {"headers": ADMIN_AUTH}),
        ("POST", f"/v1/strategies/{pid}/rollback", {"headers": ADMIN_AUTH}),
        ("PATCH", f"/v1/products/{pid}/status", {"headers": ADMIN_AUTH, "json": {"status": "x"}}),
    ]


def test_nasty_query_values_are_refused_or_harmless(hostile: TestClient, engine: Engine) -> None:
    for value in NASTY:
        check_query_value(hostile, engine, value)


def check_query_value(hostile: TestClient, engine: Engine, value: str) -> None:
    before = row_counts(engine)
    # The customer exists: only the query can make these fail, and it must fail cleanly.
    for name in ("channel", "placement", "strategy", "explain"):
        response = hostile.get(
            "/v1/customers/C2/recommendations", params={name: value}, headers=ADMIN_AUTH
        )
        if response.status_code == 200:
            # A free-text label (channel/placement) is data, not a command: it is served, and
            # logged as one exposure row; anything else must be refused.
            assert name in ("channel", "placement") and len(value) <= 64, name
            continue
        assert_problem(response)
    for params in ({"category": value}, {"status": value}, {"risk_level": value}):
        response = hostile.get("/v1/products", params=params)
        if response.status_code == 200:
            assert response.json()["data"] == [], "an injection string matched rows"
        else:
            assert_problem(response, 422)
    after = row_counts(engine)
    served = after.pop("exposures") - before.pop("exposures")
    assert after == before
    assert served <= 2


def test_bad_k_is_a_422_naming_k(hostile: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    for k in BAD_K:
        for url in ("/v1/customers/C2/recommendations", "/v1/products/P04/similar"):
            response = hostile.get(url, params={"k": k})
            assert_problem(response, 422)
            assert "k" in response.json()["detail"], k
    assert row_counts(engine) == before


def test_out_of_range_offsets_are_422(hostile: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    for url in ("/v1/products", "/v1/campaigns"):
        response = hostile.get(url, params={"offset": 10**30}, headers=ADMIN_AUTH)
        assert_problem(response, 422)
    assert row_counts(engine) == before


def test_a_very_long_query_string_is_harmless(hostile: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    query = "&".join(f"p{n}={LONG[:100]}" for n in range(500))
    response = hostile.get(f"/v1/products?{query}&category=%00")
    assert response.status_code in (200, 414, 422), response.status_code
    assert row_counts(engine) == before


# ---- bodies ---------------------------------------------------------------------------------

JSON = {"content-type": "application/json"}
BODY_CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("malformed", b'{"events": [', JSON),
    ("trailing garbage", b'{"events": []} {"x": 1}', JSON),
    ("not an object", b'"events"', JSON),
    ("null", b"null", JSON),
    ("a list", b"[]", JSON),
    ("empty", b"", JSON),
    ("invalid utf-8", b'{"events": ["\xff\xfe"]}', JSON),
    ("nested deeply", b'{"events": ' + b"[" * 100_00 + b"]" * 100_00 + b"}", JSON),
    ("duplicate keys", b'{"events": [{"customer_id": "C1"}], "events": []}', JSON),
    ("unknown field", b'{"events": [], "admin": true}', JSON),
    ("text/plain", b'{"events": []}', {"content-type": "text/plain"}),
    ("form", b"events=1", {"content-type": "application/x-www-form-urlencoded"}),
    ("xml", b"<events/>", {"content-type": "application/xml"}),
    ("no content type", b'{"events": []}', {}),
    ("huge number", b'{"events": [1' + b"0" * 3000 + b"]}", JSON),
    ("NaN token", b'{"events": NaN}', JSON),
]


def test_bad_bodies_are_4xx_and_store_nothing(hostile: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    for name, body, headers in BODY_CASES:
        for method, url in BODY_TARGETS:
            response = hostile.request(method, url, content=body, headers={**ADMIN_AUTH, **headers})
            if url == "/v1/events" and response.status_code == 200:
                # A well-formed batch of malformed events: each is rejected on its own.
                assert response.json()["accepted"] == 0, name
                continue
            assert_problem(response)
    assert row_counts(engine) == before


BODY_TARGETS = [
    ("POST", "/v1/events"),
    ("PUT", "/v1/customers/C9"),
    ("PUT", "/v1/products/P99"),
    ("POST", "/v1/experiments"),
    ("PUT", "/v1/strategies/popularity/pin"),
]


def test_oversized_bodies_are_413(hostile: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    big = b'{"events": [' + b'"x",' * MAX_BODY + b'"x"]}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must count as it reads
        for start in range(0, len(big), 1024):
            yield big[start : start + 1024]

    for content in (big, chunks()):
        response = hostile.post("/v1/events", content=content, headers={**ADMIN_AUTH, **JSON})
        assert_problem(response, 413)
    assert row_counts(engine) == before


def test_nasty_values_in_bodies_store_nothing(hostile: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    for value in NASTY:
        check_body_value(hostile, value)
    assert row_counts(engine) == before


def check_body_value(hostile: TestClient, value: str) -> None:
    response = hostile.put(
        f"/v1/customers/{path_id(value)}",
        json={"risk_class": value, "consent_personalization": True},
        headers=ADMIN_AUTH,
    )
    assert_problem(response)
    response = hostile.put(
        f"/v1/products/{path_id(value)}",
        json={"name": value, "category": value, "risk_level": value, "status": "active"},
        headers=ADMIN_AUTH,
    )
    assert_problem(response)
    # Events are judged one by one (a bad event never sinks its batch): the batch is answered
    # 200 with every hostile event rejected, and none is stored.
    event = {"customer_id": value, "product_id": value, "event_type": value, "occurred_at": value}
    response = hostile.post("/v1/events", json={"events": [event]}, headers=ADMIN_AUTH)
    if response.status_code == 200:
        assert response.json()["accepted"] == 0
    else:
        assert_problem(response)


def test_hostile_keys_are_401(hostile: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    for header in HOSTILE_KEYS:
        response = hostile.get(
            "/v1/customers/C2/recommendations", headers={"Authorization": header}
        )
        assert_problem(response, 401)
    assert row_counts(engine) == before


HOSTILE_KEYS: list[str | bytes] = [
    "Bearer ' OR 1=1 --",
    "Bearer frk_" + "a" * 5000,
    "Bearer frk_../../etc_passwd",
    "Basic YWRtaW46YWRtaW4=",
    "Bearer",
    "Bearer \u202e".encode(),
    b"Bearer frk_\xff\xfe_x",
]
