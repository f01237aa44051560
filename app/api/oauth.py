"""OAuth2 client-credentials access tokens (JWTs) as an alternative to finrec's own API keys.

For banks whose clients already get tokens from an authorisation server: set
``FINREC_OAUTH_ISSUER``, ``FINREC_OAUTH_AUDIENCE`` and ``FINREC_OAUTH_JWKS_URL`` and a bearer
token that is not an ``frk_`` key is verified as a JWT: signature against the key set (an
``https://`` URL fetched and cached by PyJWT's client, refetched when a token names an unknown
key id; or a local JSON file, ``file://`` URI or path, read once), ``iss``,
``aud`` and ``exp`` (required), asymmetric algorithms only. The principal's scopes are the
finrec scopes listed in the space-separated ``scope`` claim; the client is named by
``client_id``, ``azp`` or ``sub``. The authenticator caches the result like a key's, never past
the token's expiry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from app.services.keys import SCOPES, Principal
from app.settings import Settings

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
"""Public-key algorithms only: an HMAC or ``none`` token could be forged from the key set."""

LEEWAY_SECONDS = 30  # clock skew tolerated on exp/nbf/iat


class KeySetUnavailable(Exception):
    """The key set could not be fetched: the token may be valid, so this is not a refusal."""


class JwtVerifier:
    """Verifies access tokens against one issuer, audience and key set."""

    def __init__(self, issuer: str, audience: str, jwks_url: str) -> None:
        self.issuer = issuer
        self.audience = audience
        remote = urlparse(jwks_url).scheme in ("http", "https")
        self._client = PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if remote else None
        self._file = None if remote else _local_path(jwks_url)
        self._set: PyJWKSet | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier | None:
        """A verifier when OAuth is configured, else ``None`` (the settings require all three)."""
        if not (settings.oauth_issuer and settings.oauth_audience and settings.oauth_jwks_url):
            return None
        return cls(settings.oauth_issuer, settings.oauth_audience, settings.oauth_jwks_url)

    def verify(self, token: str) -> tuple[Principal, float] | None:
        """``(principal, expiry as a monotonic time)`` of a valid token, else ``None``.

        Blocking (it may fetch the key set): call it off the event loop.
        """
        try:
            signing_key = self._signing_key(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise KeySetUnavailable(str(exc)) from None
        except jwt.PyJWTError:
            return None
        if signing_key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        raw_scope = claims.get("scope", "")
        granted = raw_scope.split() if isinstance(raw_scope, str) else []
        client = str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "-")
        principal = Principal(f"jwt:{client}", client, frozenset(s for s in granted if s in SCOPES))
        expires = time.monotonic() + (float(claims["exp"]) - time.time())
        return principal, expires

    def _signing_key(self, token: str) -> PyJWK | None:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token)
        if self._set is None:
            assert self._file is not None
            try:
                self._set = PyJWKSet.from_dict(json.loads(self._file.read_text()))
            except (OSError, ValueError) as exc:
                raise KeySetUnavailable(f"cannot read the key set {self._file}: {exc}") from None
        kid = jwt.get_unverified_header(token).get("kid")
        return next((k for k in self._set.keys if k.key_id == kid), None)


def _local_path(location: str) -> Path:
    """A key-set file given as a ``file://`` URI or a plain path."""
    parsed = urlparse(location)
    return Path(url2pathname(parsed.path)) if parsed.scheme == "file" else Path(location)
