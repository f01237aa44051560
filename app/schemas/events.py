"""Interaction events posted by the bank's channels, and the per-event outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

MAX_EVENTS_PER_BATCH = 500


class EventCreate(BaseModel):
    """One interaction: a customer viewed, clicked, applied for, bought or holds a product."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Idempotency key; when left out, a hash of the event's content is used.",
    )
    customer_id: str = Field(min_length=1, max_length=64)
    product_id: str = Field(min_length=1, max_length=64)
    event_type: str = Field(
        min_length=1, max_length=32, description="One of the configured event types."
    )
    occurred_at: datetime | float = Field(
        description="ISO-8601 (UTC assumed when no offset is given) or unix seconds."
    )
    value: float | None = Field(default=None, allow_inf_nan=False)
    channel: str | None = Field(default=None, max_length=32)
    recommendation_id: str | None = Field(
        default=None, max_length=64, description="The recommendation this event answers."
    )


# Events are validated one by one, by the import rules, so that one bad event never sinks the
# batch; the schema documents what each event must look like.
_EventItem = Annotated[Any, WithJsonSchema(EventCreate.model_json_schema())]


class EventsCreate(BaseModel):
    """Body of ``POST /v1/events``: a batch of events, each accepted or rejected on its own."""

    model_config = ConfigDict(extra="forbid")

    events: list[_EventItem] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventError(BaseModel):
    """Why an event was rejected."""

    field: str
    message: str


class EventResultPublic(BaseModel):
    """The outcome of one event, in request order."""

    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[EventError] = Field(default_factory=list)


class EventsPublic(BaseModel):
    """Counts and per-event outcomes of a batch."""

    accepted: int
    duplicate: int
    rejected: int
    results: list[EventResultPublic]
