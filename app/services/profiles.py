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

from sqlalchemy import select
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


def read_profile(session: Session, customer_id: str, validity_months: int) -> Profile:
    """Read one profile and its holdings (two small indexed queries)."""
    customer = session.scalar(select(Customer).where(Customer.customer_id == customer_id))
    if customer is None:
        raise CustomerNotFound(f"no customer with id {customer_id!r}")
    held = session.scalars(
        select(Product.product_id)
        .join(Holding, Holding.product_pk == Product.id)
        .where(Holding.customer_pk == customer.id)
    ).all()
    assessed = customer.risk_assessed_at
    return Profile(
        customer_id=customer.customer_id,
        segment=customer.segment,
        risk_class=parse_level(customer.risk_class, "C"),
        risk_valid_until=add_months(assessed, validity_months) if assessed else None,
        consent=bool(customer.consent_personalization),
        held=frozenset(held),
        attributes={
            "segment": customer.segment,
            "age": customer.age,
            "income_band": customer.income_band,
            "risk_class": customer.risk_class,
            "channel": customer.channel,
            **(customer.features or {}),
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
            with self._session_factory() as session:
                profile = read_profile(session, customer_id, self._validity_months)
        except CustomerNotFound:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise ProfileUnavailable(f"customer profiles cannot be read: {exc}") from exc
        self.put(profile, epoch=epoch)
        return profile

    def put(self, profile: Profile, *, epoch: int | None = None) -> None:
        """Cache ``profile`` (skipped when an invalidation happened since ``epoch``)."""
        if self._max_size == 0:
            return
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return
            self._entries[profile.customer_id] = (self._clock(), profile)
            self._entries.move_to_end(profile.customer_id)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

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
