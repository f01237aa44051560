"""API keys: create, list, revoke and verify; only a salted hash of each secret is stored.

A key reads ``frk_<key id>_<secret>``. The key id is public (it names the key in ``finrec keys
list``, log lines and metrics) and is the primary key the verifier looks the row up by; the
secret is 32 random bytes. The stored hash is HMAC-SHA256 of the secret keyed by a random
per-key salt: the secret is high-entropy, so a slow password KDF would add nothing but cost on
every cache miss. Hashes are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import ApiKey
from app.services.errors import DomainError, NotFoundError

SCOPE_READ = "recommendations:read"
SCOPE_EVENTS = "events:write"
SCOPE_ADMIN = "admin"
SCOPES = (SCOPE_READ, SCOPE_EVENTS, SCOPE_ADMIN)
"""Every scope a key can hold; ``admin`` implies the others."""

PREFIX = "frk_"
_ID_LEN = 12  # hex characters of the public key id
_NAME_MAX = 100


class InvalidKeyRequest(DomainError):
    """A key cannot be created as asked (unknown scope, empty name)."""

    slug = "invalid-key-request"


class KeyNotFound(NotFoundError):
    """No key with that id."""

    slug = "key-not-found"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key id and name (safe to log) and what the key may do."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """Whether this principal holds ``scope`` (``admin`` holds every scope)."""
        return scope in self.scopes or SCOPE_ADMIN in self.scopes


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed: never the secret, never the hash."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        return cls(
            row.id,
            row.name,
            tuple(row.scopes.split()),
            row.created_at,
            row.revoked_at,
            row.last_used_at,
        )


def hash_secret(salt: str, secret: str) -> str:
    """HMAC-SHA256 of ``secret`` keyed by the hex ``salt``, as stored in ``api_keys.hash``."""
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else ``None`` (no database work needed)."""
    if not token.startswith(PREFIX) or len(token) < len(PREFIX) + _ID_LEN + 2:
        return None
    key_id = token[len(PREFIX) : len(PREFIX) + _ID_LEN]
    if token[len(PREFIX) + _ID_LEN] != "_" or not all(c in "0123456789abcdef" for c in key_id):
        return None
    return key_id, token[len(PREFIX) + _ID_LEN + 1 :]


def normalise_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Known scopes, deduplicated in the canonical order; unknown ones are refused."""
    wanted = set(scopes)
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise InvalidKeyRequest(
            f"unknown scope(s) {', '.join(unknown)}; known scopes: {', '.join(SCOPES)}"
        )
    if not wanted:
        raise InvalidKeyRequest(f"a key needs at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in wanted)


def create_key(session: Session, name: str, scopes: Iterable[str]) -> tuple[KeyInfo, str]:
    """Store a new key and return it with its full token (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > _NAME_MAX:
        raise InvalidKeyRequest(f"a key name is 1 to {_NAME_MAX} characters")
    canonical = normalise_scopes(scopes)
    key_id = secrets.token_hex(_ID_LEN // 2)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    row = ApiKey(
        id=key_id,
        name=name,
        scopes=" ".join(canonical),
        salt=salt,
        hash=hash_secret(salt, secret),
        created_at=utcnow(),
    )
    session.add(row)
    session.commit()
    return KeyInfo.of(row), f"{PREFIX}{key_id}_{secret}"


def list_keys(session: Session, *, include_revoked: bool = True) -> list[KeyInfo]:
    """Every key, oldest first (revoked ones too unless asked otherwise)."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [KeyInfo.of(row) for row in session.scalars(query)]


def find_active(session: Session, name: str) -> list[KeyInfo]:
    """Active keys with this name (scripts use it to stay idempotent)."""
    return [k for k in list_keys(session, include_revoked=False) if k.name == name]


def revoke_key(session: Session, key_id: str) -> KeyInfo:
    """Revoke a key (idempotent: revoking twice keeps the first time)."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise KeyNotFound(f"no key with id {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return KeyInfo.of(row)


def verify_token(session: Session, token: str) -> Principal | None:
    """The principal of a valid, unrevoked key, else ``None`` (one primary-key read).

    Malformed, unknown, revoked and wrong-secret keys all give ``None``, so the caller cannot
    answer them differently by accident.
    """
    parts = split_token(token)
    if parts is None:
        return None
    key_id, secret = parts
    row = session.get(ApiKey, key_id)
    if row is None:
        # Same work as a known key, so timing does not tell whether the id exists.
        hmac.compare_digest(hash_secret("00" * 16, secret), "0" * 64)
        return None
    valid = hmac.compare_digest(hash_secret(row.salt, secret), row.hash)
    if not valid or row.revoked_at is not None:
        return None
    return Principal(row.id, row.name, frozenset(row.scopes.split()))


LAST_USED_RESOLUTION = timedelta(minutes=5)
"""``last_used_at`` is kept to this precision, so most cache fills write nothing."""


def touch_last_used(session: Session, key_id: str, when: datetime) -> None:
    """Record when a key was last seen: called on a cache fill (never per request), and only
    written when the stored time is older than :data:`LAST_USED_RESOLUTION`."""
    row = session.get(ApiKey, key_id)  # usually already loaded by verify_token: no query
    if row is None:
        return
    if row.last_used_at is not None and when - row.last_used_at < LAST_USED_RESOLUTION:
        return
    row.last_used_at = when
    session.commit()
