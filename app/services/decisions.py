"""Decision records: read a customer's served lists for complaints handling, prune old ones.

A decision record is the exposure row written once per served list (:mod:`app.services.exposures`).
Records are never changed: this module only reads them and, for retention, deletes whole rows
older than ``FINREC_DECISION_RETENTION_DAYS`` in batches (on PostgreSQL the only delete the
table's trigger lets through, see migration 0006).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Exposure
from app.schemas.decisions import (
    DecisionItem,
    DecisionPublic,
    DecisionRemoval,
    DecisionsPublic,
    PruneResult,
)
from app.services.errors import CustomerNotFound, DomainError

PRUNE_BATCH_ROWS = 5_000


class InvalidDecisionQuery(DomainError):
    """A cursor that this service did not issue, or an empty time range."""

    status = 422
    slug = "invalid-decision-query"


def encode_cursor(served_at: datetime, row_id: int) -> str:
    """An opaque position in newest-first order: the last record's time and row id."""
    raw = f"{served_at.astimezone(UTC).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, row_id = raw.partition("|")
        served_at = datetime.fromisoformat(moment)
        if served_at.tzinfo is None:
            raise ValueError("naive time")
        return served_at.astimezone(UTC), int(row_id)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidDecisionQuery("cursor is not one this service issued") from None


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """The moment in UTC; one that UTC cannot hold (year 1 at +01:00) is the caller's error."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidDecisionQuery(f"{name} is out of range") from None


def _public(row: Exposure) -> DecisionPublic:
    items: list[dict[str, Any]] = row.items or []
    removed: Sequence[Sequence[str]] = row.removed or []
    return DecisionPublic(
        recommendation_id=row.recommendation_id,
        customer_id=row.customer_id,
        served_at=row.served_at,
        strategy=row.strategy,
        model_version=row.model_version,
        policy_version=row.policy_version,
        served_from=row.served_from,
        degraded=row.degraded,
        basis=row.basis,
        risk_class=row.risk_class,
        channel=row.channel,
        placement=row.placement,
        experiment=row.experiment,
        variant=row.variant,
        items=[DecisionItem.model_validate(item) for item in items],
        removed=[DecisionRemoval(product_id=p, rule=rule) for p, rule in removed],
    )


def list_decisions(
    session: Session,
    customer_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> DecisionsPublic:
    """A customer's records, newest first; ``since`` inclusive, ``until`` exclusive.

    A customer deleted since keeps their records (complaints may outlive an account), so only
    an id that is neither a customer nor in any record is unknown.
    """
    since, until = _utc(since, "since"), _utc(until, "until")
    if since is not None and until is not None and until <= since:
        raise InvalidDecisionQuery("until must be after since")
    known = session.scalar(
        select(
            exists().where(Customer.customer_id == customer_id)
            | exists().where(Exposure.customer_id == customer_id)
        )
    )
    if not known:
        raise CustomerNotFound(f"no customer with id {customer_id!r}")
    query = select(Exposure).where(Exposure.customer_id == customer_id)
    if since is not None:
        query = query.where(Exposure.served_at >= since)
    if until is not None:
        query = query.where(Exposure.served_at < until)
    if cursor is not None:
        at, row_id = decode_cursor(cursor)
        query = query.where(
            or_(Exposure.served_at < at, and_(Exposure.served_at == at, Exposure.id < row_id))
        )
    rows = session.scalars(
        query.order_by(Exposure.served_at.desc(), Exposure.id.desc()).limit(limit + 1)
    ).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].served_at, page[-1].id) if len(rows) > limit else None
    return DecisionsPublic(data=[_public(r) for r in page], next_cursor=next_cursor)


def retention_cutoff(retention_days: int, now: datetime | None = None) -> datetime:
    """Records served before this moment are past retention."""
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


def prune(
    session_factory: sessionmaker[Session],
    retention_days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_rows: int = PRUNE_BATCH_ROWS,
) -> PruneResult:
    """Delete records older than the retention period, ``batch_rows`` per transaction.

    Short transactions keep the serving writer's inserts flowing while a large backlog is
    removed; a prune that stops half-way leaves whole rows either kept or gone.
    """
    cutoff = retention_cutoff(retention_days, now)
    old = Exposure.served_at < cutoff
    if dry_run:
        with session_factory() as session:
            count = session.scalar(select(func.count()).select_from(Exposure).where(old)) or 0
        return PruneResult(cutoff=cutoff, records=count, dry_run=True)
    total = 0
    while True:
        with session_factory() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                # The append-only trigger lets deletes through only in this transaction.
                session.execute(text("SET LOCAL finrec.decision_prune = 'on'"))
            ids = session.scalars(
                select(Exposure.id).where(old).order_by(Exposure.id).limit(batch_rows)
            ).all()
            if ids:
                session.execute(delete(Exposure).where(Exposure.id.in_(ids)))
        total += len(ids)
        if len(ids) < batch_rows:
            return PruneResult(cutoff=cutoff, records=total, dry_run=False)
