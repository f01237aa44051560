"""Scoped API keys at the edge: ``require_scope(scope)`` guards a route.

Routes declare ``dependencies=[require_scope("admin")]`` (or take ``AdminScope`` and friends as
a parameter to read the caller). A key travels as ``Authorization: Bearer frk_…``.

The hot path costs one SHA-256 of the presented token and one dict lookup: verified keys are
cached in memory, keyed by that digest (never the token itself), for
``FINREC_AUTH_CACHE_TTL_SECONDS``, which is also the bound on how long a revoked key keeps
working on a process that had it cached. Refused tokens are cached the same way in a bounded
map, so a client retrying a bad key does not reach the database on every request. When the
database cannot be read on a cache miss, the request is answered 503 (the key may be perfectly
valid, so 401 would be a lie and letting it through would fail open); a key already cached keeps
working through the outage, past its TTL, because revocations cannot be read then either.

Every refusal is problem+json: 401 with ``WWW-Authenticate: Bearer`` and one body for a missing,
malformed, unknown, revoked or wrong key, so nothing tells whether a key id exists; 403 with one
body per missing scope; 429 with ``Retry-After`` from the per-key token bucket, which lives in
this process: each worker of a multi-worker server has its own bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Coroutine, MutableMapping
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.api.errors import ProblemError
from app.api.oauth import JwtVerifier, KeySetUnavailable
from app.db.base import utcnow
from app.schemas.problems import problem_responses
from app.services.keys import (
    PREFIX,
    SCOPE_ADMIN,
    SCOPE_EVENTS,
    SCOPE_READ,
    SCOPES,
    Principal,
    touch_last_used,
    verify_token,
)
from app.settings import Settings

__all__ = [
    "AUTH_RESPONSES",
    "SCOPES",
    "AdminScope",
    "Authenticator",
    "EventsScope",
    "Principal",
    "ReadScope",
    "guard_scopes",
    "insufficient_scope",
    "require_scope",
]

ANONYMOUS = Principal("-", "anonymous", frozenset({SCOPE_ADMIN}))
"""The caller when ``FINREC_AUTH_ENABLED=false`` (refused in production by the settings)."""

_UNAUTHORIZED_DETAIL = "a valid API key is required (Authorization: Bearer KEY)"
_REALM = 'Bearer realm="finrec"'
_CHALLENGE = {"WWW-Authenticate": _REALM}

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    bearerFormat="frk_<key id>_<secret>",
    description="An API key from `finrec keys create`, sent as `Authorization: Bearer KEY`.",
)


def _auth_responses() -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(401, 403, 429, 503)
    text = {"schema": {"type": "string"}}
    responses[401]["headers"] = {"WWW-Authenticate": {**text, "description": "`Bearer`"}}
    responses[401]["description"] = "No valid API key (missing, unknown, revoked or malformed)"
    responses[403]["description"] = "The key lacks the scope this operation needs"
    responses[429]["headers"] = {"Retry-After": {**text, "description": "Seconds to wait"}}
    responses[429]["description"] = "This key is over its rate limit"
    return responses


AUTH_RESPONSES = _auth_responses()
"""OpenAPI entries for what the guard itself may answer; routers add them to every route."""


def insufficient_scope(scope: str) -> ProblemError:
    """The 403 for a key without ``scope``: one body per scope, whoever asks."""
    return ProblemError(
        403,
        "insufficient-scope",
        f"this operation needs an API key with the {scope} scope",
        headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", scope="{scope}"'},
        scope=scope,
    )


def _unauthorized() -> ProblemError:
    return ProblemError(401, "unauthorized", _UNAUTHORIZED_DETAIL, headers=dict(_CHALLENGE))


class Authenticator:
    """Verifies presented keys against the database behind two bounded in-memory caches, and
    meters each key through a token bucket; one per app (``app.state.auth``)."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.auth_enabled
        self.ttl = settings.auth_cache_ttl_seconds
        self.negative_size = settings.auth_negative_cache_size
        self.rate = settings.rate_limit_per_second
        self.burst = float(max(settings.rate_limit_burst, 1))
        self._valid: dict[bytes, tuple[Principal, float]] = {}
        self._refused: dict[bytes, float] = {}
        self._buckets: dict[str, list[float]] = {}  # key id -> [tokens, last refill]
        self.misses = 0  # database lookups made (tests and benchmarks read it)
        self.jwt = JwtVerifier.from_settings(settings)  # OAuth2 access tokens, when configured

    async def authenticate(
        self, token: str | None, session_factory: sessionmaker[Session]
    ) -> Principal:
        """The principal of ``token``, or a 401/503 problem; cached per token digest."""
        if not self.enabled:
            return ANONYMOUS
        if not token:
            raise _unauthorized()
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        hit = self._valid.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        refused = self._refused.get(digest)
        if refused is not None and refused > now:
            raise _unauthorized()
        self.misses += 1
        expires = None
        try:
            if self.jwt is not None and not token.startswith(PREFIX):
                verified = await asyncio.to_thread(self.jwt.verify, token)
                principal, expires = verified if verified else (None, None)
            else:
                principal = await asyncio.to_thread(_lookup, session_factory, token)
        except (SQLAlchemyError, KeySetUnavailable):
            if hit is not None:  # stale but known: keep serving it through the outage
                self._valid[digest] = (hit[0], now + self.ttl)
                return hit[0]
            raise ProblemError(
                503,
                "auth-unavailable",
                "API keys cannot be checked right now; retry shortly",
                headers={"Retry-After": str(max(1, math.ceil(self.ttl)))},
            ) from None
        now = time.monotonic()
        if principal is None:
            self._valid.pop(digest, None)
            self._remember_refusal(digest, now)
            raise _unauthorized()
        # A token is never cached past its own expiry.
        self._valid[digest] = (principal, min(now + self.ttl, expires or now + self.ttl))
        return principal

    def _remember_refusal(self, digest: bytes, now: float) -> None:
        refused = self._refused
        while len(refused) >= self.negative_size > 0:
            refused.pop(next(iter(refused)))  # oldest first (dicts keep insertion order)
        if self.negative_size > 0:
            refused[digest] = now + self.ttl

    def meter(self, principal: Principal) -> None:
        """Take one token from the key's bucket, or raise 429 with ``Retry-After``."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        bucket = self._buckets.get(principal.key_id)
        if bucket is None:
            self._buckets[principal.key_id] = [self.burst - 1.0, now]
            return
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
            raise ProblemError(
                429,
                "rate-limited",
                f"this key is over its rate limit; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        bucket[0] = tokens - 1.0

    def forget(self) -> None:
        """Drop both caches (tests; an operator can simply wait one TTL)."""
        self._valid.clear()
        self._refused.clear()


def _lookup(session_factory: sessionmaker[Session], token: str) -> Principal | None:
    with session_factory() as session:
        principal = verify_token(session, token)
        if principal is not None:
            # Best effort: a busy or read-only database must not turn a valid key away.
            try:
                touch_last_used(session, principal.key_id, utcnow())
            except SQLAlchemyError:
                session.rollback()
        return principal


def token_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of raw ASGI headers (the lane has no parsed headers to ask)."""
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() != b"bearer ":
                return None
            return value[7:].strip().decode("latin-1") or None
    return None


async def check(request: Request, scope: str, token: str | None) -> Principal:
    """Authenticate ``token``, meter the key and require ``scope``; sets the principal."""
    return await check_asgi(request.scope, request.app.state, scope, token)


async def check_asgi(
    asgi_scope: MutableMapping[str, Any], app_state: Any, scope: str, token: str | None
) -> Principal:
    """:func:`check` on the raw ASGI scope and the app's state (the fast lane holds no
    ``Request``): the principal is recorded in ``asgi_scope["state"]`` the same way."""
    auth: Authenticator = app_state.auth
    principal = await auth.authenticate(token, app_state.session_factory)
    auth.meter(principal)
    if not principal.allows(scope):
        raise insufficient_scope(scope)
    asgi_scope.setdefault("state", {})["principal"] = principal
    return principal


Guard = Callable[..., Coroutine[Any, Any, Principal]]
_GUARD_SCOPES: dict[Guard, str] = {}
_GUARDS: dict[str, DependsParam] = {}


def require_scope(scope: str) -> Any:
    """A route dependency that admits only keys holding ``scope`` (``admin`` holds all).

    Use as ``dependencies=[require_scope("admin")]``; the result also works as the metadata of
    an ``Annotated`` parameter to receive the :class:`Principal`.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    if scope in _GUARDS:
        return _GUARDS[scope]

    async def guard(
        request: Request,
        # A default, not ``Annotated``: annotations are strings here and cannot see ``scope``.
        credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme, scopes=[scope]),
    ) -> Principal:
        return await check(request, scope, credentials.credentials if credentials else None)

    guard.__name__ = f"require_{scope.replace(':', '_')}"
    _GUARD_SCOPES[guard] = scope
    _GUARDS[scope] = Depends(guard)
    return _GUARDS[scope]


def guard_scopes(route: APIRoute) -> list[str] | None:
    """The scopes a route's dependencies require, or ``None`` if it has any other dependency
    (the fast lane then leaves the route to FastAPI)."""
    scopes: list[str] = []
    for dependency in route.dependencies:
        scope = _GUARD_SCOPES.get(dependency.dependency)  # type: ignore[arg-type]
        if scope is None:
            return None
        scopes.append(scope)
    return scopes


ReadScope = Annotated[Principal, require_scope(SCOPE_READ)]
EventsScope = Annotated[Principal, require_scope(SCOPE_EVENTS)]
AdminScope = Annotated[Principal, require_scope(SCOPE_ADMIN)]
