"""Deterministic assignment of customers to experiment arms, with no per-customer state.

For a customer id and an experiment's ``salt`` the service hashes the UTF-8 bytes of
``salt + ":" + customer_id`` with SHA-256 and reads two numbers from the 32-byte digest:

* **bucket** = bytes 0-7 as a big-endian unsigned integer, mod 10,000. The customer is in the
  experiment when ``bucket < round(traffic * 10,000)``, so raising the traffic share only adds
  buckets at the top of the range: nobody already enrolled leaves.
* **slot** = bytes 8-15 as a big-endian unsigned integer, mod 10,000. The arms own consecutive
  slot ranges in their declared order, sized by their weights (cumulative weights scaled to
  10,000). The slot does not depend on the traffic share, so raising traffic never moves an
  enrolled customer to another arm, and each arm keeps its weight's share at every traffic level.

Choosing the arm from the bucket's *position within* the traffic range would not have that
property: the range's width changes with the traffic share, so customers near every arm boundary
would change arms. Using an independent part of the same digest avoids it.

The serving path reads a :class:`ExperimentBook` snapshot (refreshed in the background), never
the database, and calls :func:`assign_for_request`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Experiment, ExperimentVariant

log = logging.getLogger(__name__)

BUCKETS = 10_000


def _digest(salt: str, customer_id: str) -> bytes:
    return hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()


def bucket_of(salt: str, customer_id: str) -> int:
    """The traffic bucket (0..9,999) of one customer."""
    return int.from_bytes(_digest(salt, customer_id)[:8], "big") % BUCKETS


def slot_of(salt: str, customer_id: str) -> int:
    """The arm slot (0..9,999) of one customer."""
    return int.from_bytes(_digest(salt, customer_id)[8:16], "big") % BUCKETS


def buckets_and_slots(salt: str, customer_ids: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Buckets and slots for many customers at once (int64 arrays, same order)."""
    prefix = f"{salt}:".encode()
    raw = b"".join(hashlib.sha256(prefix + c.encode()).digest()[:16] for c in customer_ids)
    words = np.frombuffer(raw, dtype=">u8").reshape(-1, 2)
    return (
        (words[:, 0] % BUCKETS).astype(np.int64),
        (words[:, 1] % BUCKETS).astype(np.int64),
    )


def slot_bounds(weights: Sequence[float]) -> tuple[int, ...]:
    """Exclusive upper slot of each arm: cumulative weights scaled to 10,000 (last = 10,000)."""
    if not weights or any(not w > 0 for w in weights):
        raise ValueError("every arm needs a positive weight")
    total = float(sum(weights))
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)) / total
    bounds = [math.floor(c * BUCKETS + 0.5) for c in cumulative[:-1].tolist()]
    return (*bounds, BUCKETS)


def traffic_buckets(traffic: float) -> int:
    """How many buckets (from 0 up) a traffic share enrols."""
    return math.floor(min(max(traffic, 0.0), 1.0) * BUCKETS + 0.5)


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant as serving sees it."""

    name: str
    role: str
    strategy: str
    model_version: str | None
    k: int | None
    upper: int  # exclusive upper slot
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which arm of which experiment serves a customer."""

    experiment: str
    variant: str
    role: str
    strategy: str
    model_version: str | None
    k: int | None
    bucket: int
    slot: int


@dataclass(frozen=True, slots=True)
class ExperimentPlan:
    """An experiment reduced to what assignment needs (immutable; safe to share)."""

    key: str
    salt: str
    status: str
    traffic_buckets: int
    placements: frozenset[str]
    arms: tuple[Arm, ...]
    started_at: datetime | None = None

    def covers(self, placement: str | None) -> bool:
        """An experiment without placements covers every request; otherwise only its own."""
        return not self.placements or placement in self.placements

    def arm_for_slot(self, slot: int) -> Arm:
        for arm in self.arms:
            if slot < arm.upper:
                return arm
        return self.arms[-1]

    def assign(self, customer_id: str) -> Assignment | None:
        """The customer's arm, or ``None`` when their bucket is outside the traffic share."""
        digest = _digest(self.salt, customer_id)
        bucket = int.from_bytes(digest[:8], "big") % BUCKETS
        if bucket >= self.traffic_buckets:
            return None
        slot = int.from_bytes(digest[8:16], "big") % BUCKETS
        arm = self.arm_for_slot(slot)
        return Assignment(
            self.key, arm.name, arm.role, arm.strategy, arm.model_version, arm.k, bucket, slot
        )


def plan_of(experiment: Experiment, variants: Sequence[ExperimentVariant]) -> ExperimentPlan:
    """The plan of a stored experiment (variants in any order; their position decides)."""
    ordered = sorted(variants, key=lambda v: v.position)
    bounds = slot_bounds([v.weight for v in ordered])
    arms = tuple(
        Arm(v.name, v.role, v.strategy, v.model_version, v.k, upper, dict(v.params or {}))
        for v, upper in zip(ordered, bounds, strict=True)
    )
    return ExperimentPlan(
        key=experiment.key,
        salt=experiment.salt,
        status=experiment.status,
        traffic_buckets=traffic_buckets(experiment.traffic),
        placements=frozenset(experiment.placements or ()),
        arms=arms,
        started_at=experiment.started_at,
    )


ExperimentsSnapshot = tuple[ExperimentPlan, ...]


def assign_for_request(
    customer_id: str, placement: str | None, experiments_snapshot: ExperimentsSnapshot
) -> Assignment | None:
    """The arm serving this request, or ``None`` (served as usual, outside any experiment).

    Experiments are tried in start order; the first one that covers the placement and enrols
    the customer wins, so declared overlapping experiments never share a request.
    """
    for plan in experiments_snapshot:
        if plan.covers(placement):
            assignment = plan.assign(customer_id)
            if assignment is not None:
                return assignment
    return None


def load_running(session: Session) -> ExperimentsSnapshot:
    """Plans of every running experiment, in start order."""
    experiments = session.scalars(
        select(Experiment)
        .where(Experiment.status == "running")
        .order_by(Experiment.started_at, Experiment.key)
    ).all()
    if not experiments:
        return ()
    ids = [e.id for e in experiments]
    by_experiment: dict[int, list[ExperimentVariant]] = {i: [] for i in ids}
    for variant in session.scalars(
        select(ExperimentVariant).where(ExperimentVariant.experiment_id.in_(ids))
    ):
        by_experiment[variant.experiment_id].append(variant)
    return tuple(plan_of(e, by_experiment[e.id]) for e in experiments if by_experiment[e.id])


class ExperimentBook:
    """The running experiments held in memory; ``refresh`` re-reads them (background task).

    A failed refresh keeps the previous snapshot, so a database outage never changes who is in
    which arm.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session] | None,
        snapshot: ExperimentsSnapshot = (),
    ) -> None:
        self._session_factory = session_factory
        self._lock = threading.Lock()
        self.current: ExperimentsSnapshot = snapshot

    def assign(self, customer_id: str, placement: str | None) -> Assignment | None:
        current = self.current
        if not current:
            return None
        return assign_for_request(customer_id, placement, current)

    def refresh(self) -> bool:
        """Re-read running experiments; returns whether the snapshot was replaced."""
        if self._session_factory is None:
            return False
        try:
            with self._session_factory() as session:
                snapshot = load_running(session)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("experiment refresh failed; keeping the previous set: %s", exc)
            return False
        with self._lock:
            self.current = snapshot
        return True
