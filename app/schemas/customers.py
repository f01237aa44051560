"""Customer profile schemas: what the bank's systems write and what the API reads back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.jobs.importer.contract import MAX_AGE, MIN_AGE

# Clocks differ a little between the bank's systems and this one.
_CLOCK_SKEW = timedelta(minutes=5)

RiskClass = Literal["C1", "C2", "C3", "C4", "C5"]


def _latest_allowed() -> datetime:
    return datetime.now(UTC) + _CLOCK_SKEW


class CustomerUpdate(BaseModel):
    """Body of ``PUT /v1/customers/{customer_id}``.

    Fields left out keep their stored value (or the default for a new customer), so a partial
    update can never silently re-grant consent that the customer withdrew.
    """

    model_config = ConfigDict(extra="forbid")

    segment: str | None = Field(default=None, max_length=64)
    age: int | None = Field(default=None, ge=MIN_AGE, le=MAX_AGE)
    income_band: str | None = Field(default=None, max_length=32)
    channel: str | None = Field(default=None, max_length=32)
    risk_class: RiskClass | None = Field(
        default=None, description="Suitability class C1 (most cautious) to C5."
    )
    risk_assessed_at: AwareDatetime | None = Field(
        default=None,
        validate_default=True,
        description="When the risk class was assessed (ISO-8601 with offset).",
    )
    consent_personalization: bool = Field(
        default=True, description="False: only non-personalised suitable items are served."
    )
    features: dict[str, Any] = Field(default_factory=dict)

    @field_validator("risk_assessed_at")
    @classmethod
    def _assessment_is_dated(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        # A new risk class is a new assessment: without its date the policy could not expire it.
        if value is None and info.data.get("risk_class") is not None:
            raise ValueError("required when risk_class is set")
        if value is not None and value > _latest_allowed():
            raise ValueError("lies in the future")
        return value


class CustomerPublic(BaseModel):
    """A customer profile as finrec holds it."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    segment: str | None
    age: int | None
    income_band: str | None
    channel: str | None
    risk_class: RiskClass | None
    risk_assessed_at: datetime | None
    risk_assessment_current: bool = Field(
        description="False when the assessment is missing or expired: only R1 products are served."
    )
    consent_personalization: bool
    features: dict[str, Any]
    holdings: list[str] = Field(description="Product ids the customer holds now.")
    created_at: datetime
    updated_at: datetime
