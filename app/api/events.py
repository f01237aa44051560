"""Interaction events from the channels, with the recommendation they answer."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.auth import AUTH_RESPONSES, require_scope
from app.api.deps import ProfilesDep, SessionDep, SettingsDep
from app.schemas.events import EventsCreate, EventsPublic
from app.schemas.problems import problem_responses
from app.services import events

router = APIRouter(
    prefix="/v1/events",
    tags=["events"],
    dependencies=[require_scope("events:write")],
    responses=AUTH_RESPONSES,
)


@router.post(
    "", operation_id="events-ingest", response_model=EventsPublic, responses=problem_responses(413)
)
def ingest_events(
    body: EventsCreate, session: SessionDep, settings: SettingsDep, profiles: ProfilesDep
) -> EventsPublic:
    """Record a batch of events; each is accepted, a duplicate (same event_id) or rejected."""
    rules = events.EventRules.from_settings(settings)
    return events.ingest_events(session, body.events, rules, invalidate=profiles.invalidate)
