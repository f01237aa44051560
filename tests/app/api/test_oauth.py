"""OAuth2 client-credentials JWTs: verified against issuer, audience and the key set; scopes
from the ``scope`` claim; anything else is the same 401 as a bad API key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

ISSUER = "https://login.bank.example/"
AUDIENCE = "finrec"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_url(signing_key: rsa.RSAPrivateKey, tmp_path: Path) -> str:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig"}]}))
    return path.as_uri()


@pytest.fixture
def client(
    api_settings: Settings, jwks_url: str, test_keys: dict[str, dict[str, str]]
) -> Iterator[TestClient]:
    settings = api_settings.model_copy(
        update={"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE, "oauth_jwks_url": jwks_url}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def token(key: Any, *, algorithm: str = "RS256", kid: str = "k1", **claims: Any) -> str:
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 600,
        "client_id": "mobile-backend",
        "scope": "recommendations:read",
        **claims,
    }
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


def get(client: TestClient, path: str, bearer: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {bearer}"})


def test_a_valid_token_gets_the_scopes_of_its_scope_claim(
    client: TestClient, signing_key: rsa.RSAPrivateKey
) -> None:
    reader = token(signing_key, scope="openid recommendations:read")
    assert get(client, "/v1/products", reader).status_code == 200
    refused = get(client, "/v1/models", reader)
    assert refused.status_code == 403 and refused.json()["scope"] == "admin"
    admin = token(signing_key, scope="admin", client_id="ops")
    assert get(client, "/v1/models", admin).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://elsewhere.example/"},
        {"aud": "another-service"},
        {"exp": int(time.time()) - 3600},
    ],
    ids=["issuer", "audience", "expired"],
)
def test_wrong_claims_are_the_same_401_as_an_unknown_key(
    client: TestClient, signing_key: rsa.RSAPrivateKey, claims: dict[str, Any]
) -> None:
    refused = get(client, "/v1/products", token(signing_key, **claims))
    unknown = get(client, "/v1/products", "frk_0123456789ab_unknown")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json() == unknown.json()


def test_forged_tokens_are_refused(client: TestClient) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert get(client, "/v1/products", token(stranger)).status_code == 401
    # A symmetric token "signed" with a guessable secret is never accepted.
    assert get(client, "/v1/products", token("secret", algorithm="HS256")).status_code == 401
    assert get(client, "/v1/products", "not.a.jwt").status_code == 401


def test_api_keys_still_work_beside_tokens(
    client: TestClient, test_keys: dict[str, dict[str, str]]
) -> None:
    assert client.get("/v1/models", headers=test_keys["admin"]).status_code == 200


@pytest.mark.parametrize(
    "where",
    ["http://127.0.0.1:8819/jwks.json", "missing.json"],  # nothing listens on that port
    ids=["url", "file"],
)
def test_an_unreachable_key_set_is_503_not_401(
    api_settings: Settings, signing_key: rsa.RSAPrivateKey, tmp_path: Path, where: str
) -> None:
    location = where if where.startswith("http") else str(tmp_path / where)
    settings = api_settings.model_copy(
        update={
            "oauth_issuer": ISSUER,
            "oauth_audience": AUDIENCE,
            "oauth_jwks_url": location,
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = get(client, "/v1/products", token(signing_key))
    assert response.status_code == 503
    assert response.json()["type"].endswith("/auth-unavailable")


def test_oauth_settings_go_together() -> None:
    with pytest.raises(ValueError, match="go together"):
        Settings(oauth_issuer=ISSUER, _env_file=None)  # type: ignore[call-arg]
