"""Every route but health needs a key with the right scope; refusals are problem+json that tell
nothing about which keys exist; the per-key rate limit answers 429; docs are off by default."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.api import auth
from app.main import create_app
from app.services import keys
from app.settings import Settings

PROBLEM = "application/problem+json"
PUBLIC = {"/healthz", "/readyz"}
# Routes a key without ``admin`` may call; every other route (new ones included) needs admin.
SCOPE_OF: dict[tuple[str, str], str] = {
    ("GET", "/v1/customers/{customer_id}/recommendations"): "recommendations:read",
    ("GET", "/v1/products/{product_id}/similar"): "recommendations:read",
    ("GET", "/v1/customers/{customer_id}"): "recommendations:read",
    ("GET", "/v1/products"): "recommendations:read",
    ("GET", "/v1/products/{product_id}"): "recommendations:read",
    ("GET", "/v1/experiments/{key}/assignment/{customer_id}"): "recommendations:read",
    ("POST", "/v1/events"): "events:write",
}
UNKNOWN = "frk_0123456789ab_this-key-was-never-issued"


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, however routers are nested."""
    found = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for ctx in contexts() if contexts else [route]:
            for method in sorted(getattr(ctx, "methods", None) or ()):
                if method != "HEAD":
                    found.append((method, str(ctx.path)))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(api_settings: Settings) -> FastAPI:
    return create_app(api_settings)


@pytest.fixture
def anonymous(app: FastAPI, test_keys: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    """A client that sends no key unless a test gives one."""
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def revoked(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as session:
        info, token = keys.create_key(session, "gone", ["admin"])
        keys.revoke_key(session, info.key_id)
    return token


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("https://")
    return body


def test_the_route_table_covers_the_app(app: FastAPI) -> None:
    routes = every_route(app)
    assert len(routes) > 20
    assert set(SCOPE_OF) <= set(routes)  # the table names no route that is gone
    assert {path for _, path in routes} >= PUBLIC | {"/metrics"}


def test_every_route_refuses_missing_unknown_revoked_and_wrong_scope_keys(
    app: FastAPI,
    anonymous: TestClient,
    test_keys: dict[str, dict[str, str]],
    revoked: str,
) -> None:
    checked = 0
    for method, template in every_route(app):
        if template in PUBLIC:
            continue
        url = concrete(template)
        scope = SCOPE_OF.get((method, template), "admin")

        def call(headers: dict[str, str], url: str = url, method: str = method) -> Any:
            return anonymous.request(method, url, headers=headers, json={})

        missing = assert_problem(call({}), 401)
        assert call({}).headers["www-authenticate"].startswith("Bearer")
        unknown = assert_problem(call(bearer(UNKNOWN)), 401)
        malformed = assert_problem(call(bearer("not-a-key")), 401)
        gone = assert_problem(call(bearer(revoked)), 401)
        # One body whatever was wrong with the key: nothing tells whether an id exists.
        assert missing == unknown == malformed == gone, (method, template)
        assert call(bearer(revoked)).headers["www-authenticate"].startswith("Bearer")

        lacking = [test_keys[s] for s in test_keys if s not in (scope, "admin")]
        forbidden = [assert_problem(call(headers), 403) for headers in lacking]
        assert forbidden[0]["type"].endswith("/insufficient-scope")
        assert forbidden[0]["scope"] == scope
        assert all(body == forbidden[0] for body in forbidden)  # whichever key lacks it

        for allowed in (test_keys[scope], test_keys["admin"]):
            assert call(allowed).status_code not in (401, 403, 429), (method, template)
        checked += 1
    assert checked >= 25


def test_health_needs_no_key(anonymous: TestClient) -> None:
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code in (200, 503)


def test_the_strategy_override_needs_admin(
    anonymous: TestClient, test_keys: dict[str, dict[str, str]]
) -> None:
    url = "/v1/customers/x1/recommendations?strategy=popularity"
    body = assert_problem(anonymous.get(url, headers=test_keys["recommendations:read"]), 403)
    assert body["scope"] == "admin"
    assert anonymous.get(url, headers=test_keys["admin"]).status_code not in (401, 403)


def test_rate_limit_answers_429_with_retry_after(
    api_settings: Settings, test_keys: dict[str, dict[str, str]]
) -> None:
    settings = api_settings.model_copy(
        update={"rate_limit_per_second": 0.001, "rate_limit_burst": 2}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        read = test_keys["recommendations:read"]
        for _ in range(2):
            assert client.get("/v1/products", headers=read).status_code == 200
        limited = client.get("/v1/products", headers=read)
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        # The hot route's lane meters the same bucket.
        assert client.get("/v1/customers/x1/recommendations", headers=read).status_code == 429
        # Buckets are per key: another key is unaffected.
        assert client.get("/v1/products", headers=test_keys["admin"]).status_code == 200


def test_docs_are_off_by_default_and_on_when_enabled(
    api_settings: Settings, anonymous: TestClient
) -> None:
    assert Settings(_env_file=None).docs_enabled is False  # type: ignore[call-arg]
    assert anonymous.get("/docs").status_code == 404
    assert anonymous.get("/openapi.json").status_code == 404
    enabled = api_settings.model_copy(update={"docs_enabled": True})
    with TestClient(create_app(enabled)) as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_a_revoked_key_stops_within_the_cache_ttl(
    anonymous: TestClient,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with session_factory() as session:
        info, token = keys.create_key(session, "mobile", ["recommendations:read"])
    assert anonymous.get("/v1/products", headers=bearer(token)).status_code == 200
    with session_factory() as session:
        used = {k.key_id: k.last_used_at for k in keys.list_keys(session)}
        assert used[info.key_id] is not None  # written on the cache fill
        keys.revoke_key(session, info.key_id)
    # Cached: still admitted until the TTL runs out, then refused.
    assert anonymous.get("/v1/products", headers=bearer(token)).status_code == 200
    now = auth.time.monotonic()
    ttl = anonymous.app.state.settings.auth_cache_ttl_seconds  # type: ignore[attr-defined]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now + ttl + 0.1)
    assert_problem(anonymous.get("/v1/products", headers=bearer(token)), 401)


def test_cache_hits_and_refusals_do_not_reach_the_database(
    anonymous: TestClient, test_keys: dict[str, dict[str, str]]
) -> None:
    authenticator: auth.Authenticator = anonymous.app.state.auth  # type: ignore[attr-defined]
    before = authenticator.misses
    for _ in range(3):
        anonymous.get("/v1/products", headers=test_keys["admin"])
        anonymous.get("/v1/products", headers=bearer(UNKNOWN))
    assert authenticator.misses - before == 2  # one lookup per token, then the caches answer


def test_the_negative_cache_is_bounded(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"auth_negative_cache_size": 3})
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        for i in range(10):
            token = f"frk_{i:012x}_unknown"
            assert client.get("/v1/products", headers=bearer(token)).status_code == 401
        assert len(app.state.auth._refused) == 3


def test_database_down_on_a_miss_is_503_and_a_cached_key_keeps_working(
    anonymous: TestClient, test_keys: dict[str, dict[str, str]]
) -> None:
    app = anonymous.app
    read = test_keys["recommendations:read"]
    assert anonymous.get("/v1/customers/x1", headers=read).status_code == 404  # key now cached

    def down() -> Session:
        raise OperationalError("SELECT 1", {}, Exception("database is down"))

    real = app.state.session_factory  # type: ignore[attr-defined]
    app.state.session_factory = down  # type: ignore[attr-defined]
    try:
        body = assert_problem(anonymous.get("/v1/products", headers=test_keys["admin"]), 503)
        assert body["type"].endswith("/auth-unavailable")
        # The cached key is still admitted (the route itself then answers as it can).
        served = anonymous.get("/v1/customers/x1/recommendations", headers=read)
        assert served.status_code != 401
        assert not served.json().get("type", "").endswith("/auth-unavailable")
    finally:
        app.state.session_factory = real  # type: ignore[attr-defined]


def test_auth_can_be_switched_off_outside_production(
    api_settings: Settings, tmp_path: Path
) -> None:
    open_settings = api_settings.model_copy(update={"auth_enabled": False})
    with TestClient(create_app(open_settings)) as client:
        assert client.get("/v1/products").status_code == 200
    with pytest.raises(ValueError, match="FINREC_AUTH_ENABLED"):
        Settings(
            environment="production",
            secret_key="s3cret",
            auth_enabled=False,
            _env_file=None,  # type: ignore[call-arg]
        )
