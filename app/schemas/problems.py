"""The problem+json body (RFC 9457) as documented in the OpenAPI description."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An error answer: ``type`` is a stable URI ending in a slug such as ``customer-not-found``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem+json for each status (422 included)."""
    # The schema is inlined: a ``model`` entry would be filed under application/json instead.
    schema = Problem.model_json_schema()
    return {
        status: {
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
            "description": "Problem details (RFC 9457)",
        }
        for status in sorted(set(statuses) | {422})
    }
