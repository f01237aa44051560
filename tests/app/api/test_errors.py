"""Every error is problem+json: unknown routes and ids, bad parameters, admin, size, crashes."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.conftest import ADMIN_AUTH

PROBLEM = "application/problem+json"


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert getattr(response, "status_code") == status  # noqa: B009
    headers = getattr(response, "headers")  # noqa: B009
    assert headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = getattr(response, "json")()  # noqa: B009
    assert body["status"] == status
    assert str(body["type"]).startswith("https://")
    assert body["title"] and body["detail"]
    return body


def test_unknown_customer_is_customer_not_found(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/customers/nobody"), 404)
    assert str(body["type"]).endswith("/customer-not-found")
    assert "nobody" in str(body["detail"])


def test_invalid_parameters_name_the_field(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/products", params={"limit": "many"}), 422)
    assert "limit" in str(body["detail"])
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors[0]["location"] == "query"
    assert errors[0]["field"].endswith("limit")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/no-such-thing", 404),
        ("DELETE", "/v1/customers/c-1", 405),
        ("PUT", "/v1/products/p-1", 403),
        ("POST", "/v1/events", 403),  # the read key may not write events
    ],
)
def test_framework_errors_are_problems(
    client: TestClient, method: str, path: str, status: int
) -> None:
    assert_problem(client.request(method, path, content=b"{}"), status)


def test_malformed_json_is_a_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/events", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


def test_oversized_body_is_refused(client: TestClient, api_settings: Settings) -> None:
    too_big = b"x" * (api_settings.max_body_bytes + 1)
    response = client.post(
        "/v1/events", content=too_big, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 413)
    assert str(body["type"]).endswith("/body-too-large")


def test_oversized_chunked_body_is_refused(client: TestClient, api_settings: Settings) -> None:
    def chunks() -> object:
        for _ in range(api_settings.max_body_bytes // 1024 + 2):
            yield b"x" * 1024

    response = client.post("/v1/events", content=chunks())  # type: ignore[arg-type]
    assert_problem(response, 413)


def test_chunked_body_within_the_limit_reaches_the_route(client: TestClient) -> None:
    client.put("/v1/customers/c-1", json={}, headers=ADMIN_AUTH)

    def chunks() -> object:
        yield b'{"segment": '
        yield b'"mass"}'

    response = client.put(
        "/v1/customers/c-1",
        content=chunks(),  # type: ignore[arg-type]
        headers={"content-type": "application/json", **ADMIN_AUTH},
    )
    assert response.status_code == 200, response.text
    assert response.json()["segment"] == "mass"


def test_unexpected_failure_is_a_500_problem(client: TestClient) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    client.app.add_api_route("/boom-for-test", boom)  # type: ignore[attr-defined]
    body = assert_problem(client.get("/boom-for-test"), 500)
    assert "secret" not in str(body["detail"])


def test_every_route_answers_errors_as_problems(client: TestClient) -> None:
    """Hit each route with nonsense: whatever the error, it is problem+json and never a 5xx."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    operations = [
        (method.upper(), template)
        for template, item in spec["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
        # The readiness probe answers 503 with its own status body by design.
        and template != "/readyz"
    ]
    assert len(operations) >= 10
    for method, template in operations:
        path = re.sub(r"\{[^}]+\}", "x" * 200, template)
        response = client.request(method, path, json={"bogus": [1, 2]})
        assert response.status_code < 500, (method, template, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith(PROBLEM), (method, template)
