"""Cached customer profiles and holdings, so the recommendation hot path needs no database trip.

A profile holds exactly what the policy gate and the models need: risk class and its validity,
consent, segment, declared attributes and the products held now. Entries live for a TTL and are
dropped early by :meth:`ProfileCache.invalidate`, which every writer of customers, holdings or
holding events calls after its commit, so consent or risk changes apply from the next request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Holding, Product
from app.services.errors import CustomerNotFound, UnavailableError
from recommenders.policy import UNASSESSED, add_months, parse_level


class ProfileUnavailable(UnavailableError):
    """The profile store cannot be read; the caller must fail closed."""

    slug = "profile-unavailable"


@dataclass(frozen=True, slots=True)
class Profile:
    """One customer's serving profile (immutable; a change replaces the cached object)."""

    customer_id: str
    segment: str | None
    risk_class: int  # 1..5, 0 = none declared
    risk_valid_until: datetime | None  # the assessment expires at this moment
    consent: bool
    held: frozenset[str]
    attributes: dict[str, Any] = field(default_factory=dict)  # age, income_band, channel, ...

    def effective_risk_class(self, now: datetime) -> int:
        """The declared class while the assessment is valid at ``now``, else 0 (R1 only)."""
        if self.risk_class == UNASSESSED or self.risk_valid_until is None:
            return UNASSESSED
        return self.risk_class if now < self.risk_valid_until else UNASSESSED


_PROFILE_COLUMNS = (
    Customer.customer_id,
    Customer.segment,
    Customer.age,
    Customer.income_band,
    Customer.risk_class,
    Customer.risk_assessed_at,
    Customer.channel,
    Customer.consent_personalization,
    Customer.features,
)
# One round trip: the customer's columns once per held product (or once, with no product, for a
# customer who holds nothing). Core rows, not ORM entities: nothing is added to an identity map
# that is thrown away with the session.
_READ_PROFILE = (
    select(*_PROFILE_COLUMNS, Product.product_id)
    .select_from(Customer)
    .outerjoin(Holding, Holding.customer_pk == Customer.id)
    .outerjoin(Product, Product.id == Holding.product_pk)
    .where(Customer.customer_id == bindparam("customer_id"))
)


def read_profile(session: Session | Connection, customer_id: str, validity_months: int) -> Profile:
    """Read one profile and its holdings (one indexed query)."""
    rows = session.execute(_READ_PROFILE, {"customer_id": customer_id}).all()
    if not rows:
        raise CustomerNotFound(f"no customer with id {customer_id!r}")
    (cid, segment, age, income_band, risk_class, assessed, channel, consent, features, _) = rows[0]
    return Profile(
        customer_id=cid,
        segment=segment,
        risk_class=parse_level(risk_class, "C"),
        risk_valid_until=add_months(assessed, validity_months) if assessed else None,
        consent=bool(consent),
        held=frozenset(row[-1] for row in rows if row[-1] is not None),
        attributes={
            "segment": segment,
            "age": age,
            "income_band": income_band,
            "risk_class": risk_class,
            "channel": channel,
            **(features or {}),
        },
    )


class ProfileCache:
    """A bounded LRU of profiles with a TTL; thread-safe; misses read the database.

    ``invalidate`` bumps an epoch so that a read that started before the invalidation never
    stores its (possibly stale) result.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session] | None,
        *,
        validity_months: int,
        max_size: int = 100_000,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session_factory = session_factory
        self._validity_months = validity_months
        self._max_size = max_size
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Profile]] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0
        # Read by /metrics for the hit ratio; plain ints bumped under the lock already held.
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, customer_id: str) -> Profile | None:
        """The cached profile if present and fresh, else None (never touches the database)."""
        with self._lock:
            entry = self._entries.get(customer_id)
            if entry is None or self._clock() - entry[0] > self._ttl:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(customer_id)
            return entry[1]

    def get_stale(self, customer_id: str) -> Profile | None:
        """The cached profile even if expired (used only when the database is down)."""
        with self._lock:
            entry = self._entries.get(customer_id)
            return None if entry is None else entry[1]

    def load(self, customer_id: str) -> Profile:
        """Read from the database and cache. Raises CustomerNotFound or ProfileUnavailable."""
        if self._session_factory is None:
            raise ProfileUnavailable("no profile store is configured")
        epoch = self._epoch
        try:
            bind = self._session_factory.kw.get("bind")
            if isinstance(bind, Engine):  # a pooled connection: no session for one query
                with bind.connect() as connection:
                    profile = read_profile(connection, customer_id, self._validity_months)
            else:
                with self._session_factory() as session:
                    profile = read_profile(session, customer_id, self._validity_months)
        except CustomerNotFound:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise ProfileUnavailable(f"customer profiles cannot be read: {exc}") from exc
        return self.put(profile, epoch=epoch)

    def put(self, profile: Profile, *, epoch: int | None = None) -> Profile:
        """Cache ``profile`` (skipped when an invalidation happened since ``epoch``); returns the
        profile to use.

        A re-read whose content equals the expired entry's renews that entry and returns the
        cached object itself: what is kept per profile object (the policy gate's verdict, the
        list's removals, a folded-in customer's scores) stays valid, and nothing new joins the
        long-lived heap. A changed profile replaces the entry (and an invalidation has removed
        the entry already).
        """
        if self._max_size == 0:
            return profile
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return profile
            previous = self._entries.get(profile.customer_id)
            if previous is not None and previous[1] == profile:
                profile = previous[1]
            self._entries[profile.customer_id] = (self._clock(), profile)
            self._entries.move_to_end(profile.customer_id)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)
        return profile

    def invalidate(self, customer_ids: str | Iterable[str]) -> None:
        """Forget one customer (or several); call after committing any change to their profile
        or holdings, so the next request reads it afresh."""
        ids = [customer_ids] if isinstance(customer_ids, str) else list(customer_ids)
        with self._lock:
            self._epoch += 1
            for customer_id in ids:
                self._entries.pop(customer_id, None)

    def clear(self) -> None:
        """Forget everyone (after a bulk import)."""
        with self._lock:
            self._epoch += 1
            self._entries.clear()
