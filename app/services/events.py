"""Interaction events from the channels: validated one by one, stored idempotently.

The rules are the import rules (:mod:`app.jobs.importer.rules`): the same parsing of timestamps
and values, the same event types, and the same content hash for an event sent without an
``event_id``, so an event that arrives here and again in a nightly import file is stored once.
Holding event types (e.g. purchase) also record the holding, which the policy gate excludes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.models import Customer, Holding, Interaction, Product
from app.jobs.importer.contract import CONTRACTS, ImportKind
from app.jobs.importer.rules import KeyMap, RuleContext, check
from app.schemas.events import EventError, EventResultPublic, EventsPublic
from app.settings import Settings

Invalidate = Callable[[str], None]

_COLUMNS = CONTRACTS[ImportKind.INTERACTIONS].known
_DUPLICATE = "duplicate event_id"
# Import messages tell a file's author what to load first; an API caller needs only the fact.
_IMPORT_HINTS = (" (import customers first)", " (import products first)")


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


def ingest_events(
    session: Session,
    raw_events: Sequence[Any],
    rules: EventRules,
    *,
    now: datetime | None = None,
    invalidate: Invalidate | None = None,
) -> EventsPublic:
    """Validate and store a batch; each event is accepted, a duplicate, or rejected with reasons.

    Accepted events and the holdings they imply are written in one transaction; customers whose
    holdings changed are handed to ``invalidate`` after the commit.
    """
    now = now or datetime.now(UTC)
    results: dict[int, EventResultPublic] = {}
    shaped: list[int] = []
    for index, raw in enumerate(raw_events):
        errors = _shape_errors(raw)
        if errors:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            results[index] = _rejected(
                index, event_id if isinstance(event_id, str) else None, errors
            )
        else:
            shaped.append(index)

    writes: list[tuple[int, str, dict[str, Any]]] = []  # (index, customer_id, row)
    if shaped:
        for index, outcome in _check(session, [raw_events[i] for i in shaped], rules, now):
            if isinstance(outcome, EventResultPublic):
                results[shaped[index]] = outcome.model_copy(update={"index": shaped[index]})
            else:
                writes.append((shaped[index], *outcome))

    inserted = _insert_new(session, [row for _, _, row in writes])
    written = [(cid, row) for _, cid, row in writes if row["event_id"] in inserted]
    holders = _record_holdings(session, written, rules)
    session.commit()
    if invalidate is not None:
        for customer_id in sorted(holders):
            invalidate(customer_id)

    for index, _, row in writes:
        status = "accepted" if row["event_id"] in inserted else "duplicate"
        results[index] = EventResultPublic(index=index, event_id=row["event_id"], status=status)
    final = [results[i] for i in range(len(raw_events))]
    return EventsPublic(
        accepted=sum(r.status == "accepted" for r in final),
        duplicate=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )


def _check(
    session: Session, events: list[dict[str, Any]], rules: EventRules, now: datetime
) -> list[tuple[int, EventResultPublic | tuple[str, dict[str, Any]]]]:
    """Run the import rules over the batch; per event a result, or a row ready to insert."""
    frame = pd.DataFrame(
        {
            column: pd.Series(
                [None if e.get(column) is None else str(e[column]) for e in events], dtype="str"
            )
            for column in _COLUMNS
        }
    )
    customers = _key_map(session, Customer.customer_id, Customer.id, frame["customer_id"])
    products = _key_map(session, Product.product_id, Product.id, frame["product_id"])
    ctx = RuleContext(
        latest_allowed=now + rules.max_future_skew,
        event_types=tuple(sorted(rules.event_types)),
        customers=customers,
        products=products,
    )
    checked = check(ImportKind.INTERACTIONS, frame, np.arange(len(events)), ctx)
    reasons = checked.problems.reasons()
    clean = checked.clean
    event_ids = [None if pd.isna(x) else str(x) for x in clean["event_id"].tolist()]
    stored = _stored_event_ids(
        session, [e for pos, e in enumerate(event_ids) if e is not None and pos not in reasons]
    )
    customer_ids = dict(zip(customers.pks.tolist(), customers.external.tolist(), strict=True))

    out: list[tuple[int, EventResultPublic | tuple[str, dict[str, Any]]]] = []
    kept: set[str] = set()  # event ids stored already or about to be
    for pos, event_id in enumerate(event_ids):
        parts = reasons[pos].split("; ") if pos in reasons else []
        repeat = bool(parts) and all(part.startswith(_DUPLICATE) for part in parts)
        if repeat and event_id in kept:
            duplicate = EventResultPublic(index=pos, event_id=event_id, status="duplicate")
            out.append((pos, duplicate))
            continue
        if repeat:
            parts = []  # its first occurrence in the batch was rejected: judge this one alone
        if parts:
            errors = [EventError(field=_field_of(p), message=_api_wording(p)) for p in parts]
            out.append((pos, _rejected(pos, event_id, errors)))
        elif event_id in stored or event_id in kept:
            kept.add(str(event_id))
            out.append((pos, EventResultPublic(index=pos, event_id=event_id, status="duplicate")))
        else:
            kept.add(str(event_id))
            row = _row(clean.iloc[pos])
            out.append((pos, (str(customer_ids[row["customer_pk"]]), row)))
    return out


def _shape_errors(raw: Any) -> list[EventError]:
    """What must hold before an event joins the batch: an object of known fields and scalars."""
    if not isinstance(raw, dict):
        return [EventError(field="event", message="an event must be a JSON object")]
    errors = [
        EventError(field=str(key), message="unknown field") for key in raw if key not in _COLUMNS
    ]
    for key, value in raw.items():
        if key in _COLUMNS and (
            isinstance(value, bool) or not (value is None or isinstance(value, str | int | float))
        ):
            errors.append(EventError(field=key, message="must be a string or a number"))
    return errors


def _rejected(index: int, event_id: str | None, errors: list[EventError]) -> EventResultPublic:
    return EventResultPublic(index=index, event_id=event_id, status="rejected", errors=errors)


def _field_of(reason: str) -> str:
    """The field an import-rule message is about (every message names its column)."""
    return next((w for w in reason.split() if w in _COLUMNS), "event")


def _api_wording(reason: str) -> str:
    for hint in _IMPORT_HINTS:
        reason = reason.replace(hint, "")
    return reason


def _key_map(session: Session, column: Any, pk: Any, wanted: pd.Series) -> KeyMap:
    ids = sorted({str(x).strip() for x in wanted.dropna().tolist()})
    if not ids:
        return KeyMap.from_pairs([])
    rows = session.execute(select(column, pk).where(column.in_(ids))).all()
    return KeyMap.from_pairs([(str(e), int(p)) for e, p in rows])


def _optional(value: Any) -> Any:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def _row(clean: pd.Series) -> dict[str, Any]:
    value = _optional(clean["value"])
    return {
        "event_id": str(clean["event_id"]),
        "customer_pk": int(clean["customer_pk"]),
        "product_pk": int(clean["product_pk"]),
        "event_type": str(clean["event_type"]),
        "value": None if value is None else float(value),
        "occurred_at": pd.Timestamp(clean["occurred_at"]).to_pydatetime(),
        "channel": _optional(clean["channel"]),
        "recommendation_id": _optional(clean["recommendation_id"]),
    }


def _stored_event_ids(session: Session, event_ids: list[str]) -> set[str]:
    if not event_ids:
        return set()
    query = select(Interaction.event_id).where(Interaction.event_id.in_(event_ids))
    return set(session.scalars(query))


def _insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can skip conflicting rows (both supported backends speak ON CONFLICT)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


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
    session: Session, written: list[tuple[str, dict[str, Any]]], rules: EventRules
) -> set[str]:
    """Record the holdings implied by holding events; returns the customers concerned."""
    earliest: dict[tuple[int, int], datetime] = {}
    holders: set[str] = set()
    for customer_id, row in written:
        if row["event_type"] in rules.holding_event_types:
            key = (row["customer_pk"], row["product_pk"])
            moment = row["occurred_at"]
            earliest[key] = min(moment, earliest.get(key, moment))
            holders.add(customer_id)
    if not earliest:
        return holders
    values = [
        {"customer_pk": c, "product_pk": p, "source": "event", "since": since}
        for (c, p), since in earliest.items()
    ]
    # An existing holding (imported or from an earlier event) is left as it is.
    statement = _insert(session, Holding).on_conflict_do_nothing(
        index_elements=["customer_pk", "product_pk"]
    )
    session.execute(statement, values)
    return holders
