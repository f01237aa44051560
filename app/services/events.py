"""Interaction events from the channels: validated one by one, stored idempotently.

An event is identified by its ``event_id``; without one, by a hash of its content (see
``content_event_id``), so a channel that retries a batch never counts an event twice. Holding
event types (e.g. purchase) also record the holding, which the policy gate excludes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.models import Customer, Holding, Interaction, Product
from app.schemas.events import EventCreate, EventError, EventResultPublic, EventsPublic
from app.settings import Settings

Invalidate = Callable[[str], None]


@dataclass(frozen=True)
class EventRules:
    """What makes an event acceptable: known types, a bounded clock skew, holding types."""

    event_types: frozenset[str]
    holding_event_types: frozenset[str]
    max_future_skew: timedelta = timedelta(minutes=5)

    @classmethod
    def from_settings(cls, settings: Settings) -> EventRules:
        return cls(
            event_types=frozenset(settings.event_weights),
            holding_event_types=frozenset(settings.holding_event_types),
            max_future_skew=timedelta(seconds=settings.max_future_skew_seconds),
        )


@dataclass
class _Pending:
    index: int
    event: EventCreate
    event_id: str
    errors: list[EventError] = field(default_factory=list)


def as_utc(moment: datetime) -> datetime:
    """Naive timestamps are taken as UTC, the convention of every finrec input."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def content_event_id(
    customer_id: str,
    product_id: str,
    event_type: str,
    occurred_at: datetime,
    value: float | None = None,
) -> str:
    """The idempotency key of an event that came without one: sha256 of its content.

    The same event sent twice (same customer, product, type, instant and value) gets the same key;
    the timestamp is normalised to UTC microseconds so ISO and unix-seconds forms agree.
    """
    moment = as_utc(occurred_at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    amount = "" if value is None else repr(float(value))
    payload = "\x1f".join((customer_id, product_id, event_type, moment, amount))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def validate_event(
    raw: Any, rules: EventRules, now: datetime
) -> tuple[EventCreate | None, list[EventError]]:
    """Check one event's shape and values (not yet whether its customer and product exist)."""
    try:
        event = EventCreate.model_validate(raw)
    except ValidationError as exc:
        return None, [
            EventError(
                field=".".join(str(p) for p in err["loc"]) or "event",
                message=err["msg"],
            )
            for err in exc.errors()
        ]
    errors: list[EventError] = []
    if event.event_type not in rules.event_types:
        known = ", ".join(sorted(rules.event_types))
        errors.append(
            EventError(
                field="event_type", message=f"unknown event type {event.event_type!r} ({known})"
            )
        )
    occurred_at = as_utc(event.occurred_at)
    if occurred_at > now + rules.max_future_skew:
        errors.append(EventError(field="occurred_at", message="lies in the future"))
    return event.model_copy(update={"occurred_at": occurred_at}), errors


def _ids(session: Session, model: type[Customer] | type[Product], ext: set[str]) -> dict[str, int]:
    column = model.customer_id if model is Customer else model.product_id  # type: ignore[union-attr]
    if not ext:
        return {}
    rows = session.execute(select(column, model.id).where(column.in_(ext))).all()
    return {str(e): int(pk) for e, pk in rows}


def _insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can skip conflicting rows (both supported backends speak ON CONFLICT)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def ingest_events(
    session: Session,
    raw_events: Sequence[Any],
    rules: EventRules,
    *,
    now: datetime | None = None,
    invalidate: Invalidate | None = None,
) -> EventsPublic:
    """Validate and store a batch; each event is accepted, a duplicate, or rejected with reasons.

    Accepted events and the holdings they imply are written in one transaction. Customers whose
    holdings changed are handed to ``invalidate`` after the commit.
    """
    now = now or datetime.now(UTC)
    results: list[EventResultPublic | None] = [None] * len(raw_events)
    pending: list[_Pending] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_events):
        event, errors = validate_event(raw, rules, now)
        if event is None or errors:
            event_id = event.event_id if event is not None else None
            results[index] = EventResultPublic(
                index=index, event_id=event_id, status="rejected", errors=errors
            )
            continue
        event_id = event.event_id or content_event_id(
            event.customer_id, event.product_id, event.event_type, event.occurred_at, event.value
        )
        if event_id in seen:
            results[index] = EventResultPublic(index=index, event_id=event_id, status="duplicate")
            continue
        seen.add(event_id)
        pending.append(_Pending(index, event, event_id))

    customers = _ids(session, Customer, {p.event.customer_id for p in pending})
    products = _ids(session, Product, {p.event.product_id for p in pending})
    stored = _stored_event_ids(session, [p.event_id for p in pending])

    writes: list[tuple[int, dict[str, Any]]] = []
    for item in pending:
        event = item.event
        if event.customer_id not in customers:
            item.errors.append(EventError(field="customer_id", message="unknown customer"))
        if event.product_id not in products:
            item.errors.append(EventError(field="product_id", message="unknown product"))
        if item.errors:
            results[item.index] = EventResultPublic(
                index=item.index, event_id=item.event_id, status="rejected", errors=item.errors
            )
        elif item.event_id in stored:
            results[item.index] = EventResultPublic(
                index=item.index, event_id=item.event_id, status="duplicate"
            )
        else:
            row = {
                "event_id": item.event_id,
                "customer_pk": customers[event.customer_id],
                "product_pk": products[event.product_id],
                "event_type": event.event_type,
                "value": event.value,
                "occurred_at": event.occurred_at,
                "channel": event.channel,
                "recommendation_id": event.recommendation_id,
            }
            writes.append((item.index, row))

    inserted = _insert_new(session, [row for _, row in writes])
    written = [row for _, row in writes if row["event_id"] in inserted]
    holders = _record_holdings(session, written, rules, customers)
    session.commit()
    if invalidate is not None:
        for customer_id in sorted(holders):
            invalidate(customer_id)

    for index, row in writes:
        status = "accepted" if row["event_id"] in inserted else "duplicate"
        results[index] = EventResultPublic(index=index, event_id=row["event_id"], status=status)
    final = [r for r in results if r is not None]
    return EventsPublic(
        accepted=sum(r.status == "accepted" for r in final),
        duplicate=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )


def _stored_event_ids(session: Session, event_ids: list[str]) -> set[str]:
    if not event_ids:
        return set()
    query = select(Interaction.event_id).where(Interaction.event_id.in_(event_ids))
    return set(session.scalars(query))


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert interactions, skipping event ids already stored; returns the ids written."""
    if not rows:
        return set()
    # A concurrent request may store the same event between our read and this write: the unique
    # key decides, and the request that lost reports a duplicate.
    statement = (
        _insert(session, Interaction)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(Interaction.event_id)
    )
    return set(session.scalars(statement, rows))


def _record_holdings(
    session: Session, rows: list[dict[str, Any]], rules: EventRules, customers: dict[str, int]
) -> set[str]:
    """Record the holdings implied by holding events; returns the customers whose holdings grew."""
    earliest: dict[tuple[int, int], datetime] = {}
    for row in rows:
        if row["event_type"] in rules.holding_event_types:
            key = (row["customer_pk"], row["product_pk"])
            moment = row["occurred_at"]
            earliest[key] = min(moment, earliest.get(key, moment))
    if not earliest:
        return set()
    values = [
        {"customer_pk": c, "product_pk": p, "source": "event", "since": since}
        for (c, p), since in earliest.items()
    ]
    # An existing holding (imported or from an earlier event) is left as it is.
    statement = _insert(session, Holding).on_conflict_do_nothing(
        index_elements=["customer_pk", "product_pk"]
    )
    session.execute(statement, values)
    by_pk = {pk: ext for ext, pk in customers.items()}
    return {by_pk[c] for c, _ in earliest}
