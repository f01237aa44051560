"""Campaign schemas: admin-configured boosts and pins of one product, served as promotions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

CampaignStatus = Literal["scheduled", "live", "disabled", "ended"]

# A boost is measured in spreads of the candidate scores (see promotions.py): 1 already lifts the
# lowest candidate to the top, so anything past 10 says nothing more and is likely a typo.
MAX_BOOST = 10.0
MAX_PIN_RANK = 50  # the longest list a request may ask for

NAME_DOC = "What the campaign is called (shown to administrators only)."
PLACEMENT_DOC = "Only lists for this placement (e.g. `home`); null means every placement."
BOOST_DOC = "Score lift in spreads of the candidate scores; 0 means no boost."
PIN_DOC = "Serve the product at this rank (1 = first); null means no pin."
STARTS_DOC = "When it starts (ISO 8601 with a time zone); null means at once."
ENDS_DOC = "When it ends (ISO 8601 with a time zone); null means until it is ended."


def rule_violation(
    boost: float, pin_rank: int | None, starts_at: datetime | None, ends_at: datetime | None
) -> str | None:
    """Why these settings cannot make a campaign, or None; shared by create and update."""
    if boost <= 0 and pin_rank is None:
        return "a campaign needs a boost above 0, a pin_rank, or both"
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        return "ends_at must be after starts_at"
    return None


class CampaignCreate(BaseModel):
    """A new campaign. The product must exist; the policy gate still decides who may see it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description=NAME_DOC)
    product_id: str = Field(min_length=1, max_length=64, description="External product id.")
    placement: str | None = Field(
        default=None, min_length=1, max_length=64, description=PLACEMENT_DOC
    )
    boost: float = Field(
        default=0.0, ge=0, le=MAX_BOOST, allow_inf_nan=False, description=BOOST_DOC
    )
    pin_rank: int | None = Field(default=None, ge=1, le=MAX_PIN_RANK, description=PIN_DOC)
    starts_at: AwareDatetime | None = Field(default=None, description=STARTS_DOC)
    ends_at: AwareDatetime | None = Field(default=None, description=ENDS_DOC)
    enabled: bool = Field(default=True, description="A disabled campaign is kept but not served.")

    @model_validator(mode="after")
    def _rules(self) -> CampaignCreate:
        problem = rule_violation(self.boost, self.pin_rank, self.starts_at, self.ends_at)
        if problem:
            raise ValueError(problem)
        return self


class CampaignUpdate(BaseModel):
    """Changes to a campaign; fields left out stay as they are.

    ``placement``, ``pin_rank``, ``starts_at`` and ``ends_at`` may be set to null (every placement,
    no pin, start at once, no end); ``name``, ``boost`` and ``enabled`` may not. The product is
    fixed: a campaign for another product is a new campaign. An ended campaign cannot change.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100, description=NAME_DOC)
    placement: str | None = Field(
        default=None, min_length=1, max_length=64, description=PLACEMENT_DOC
    )
    boost: float | None = Field(
        default=None, ge=0, le=MAX_BOOST, allow_inf_nan=False, description=BOOST_DOC
    )
    pin_rank: int | None = Field(default=None, ge=1, le=MAX_PIN_RANK, description=PIN_DOC)
    starts_at: AwareDatetime | None = Field(default=None, description=STARTS_DOC)
    ends_at: AwareDatetime | None = Field(default=None, description=ENDS_DOC)
    enabled: bool | None = Field(default=None, description="Serve it (true) or pause it (false).")

    @model_validator(mode="after")
    def _no_null_for_required(self) -> CampaignUpdate:
        nulls = sorted(
            f
            for f in ("name", "boost", "enabled")
            if f in self.model_fields_set and getattr(self, f) is None
        )
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null; leave the field out to keep it")
        return self


class CampaignPublic(BaseModel):
    """A campaign as stored, with its status at the time of the answer."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    product_id: str
    placement: str | None
    boost: float
    pin_rank: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    enabled: bool
    created_at: datetime
    status: CampaignStatus = Field(
        description="`live` is served now; `scheduled` starts later; `disabled` is paused; "
        "`ended` is over for good (kept for the record)."
    )


class CampaignsPublic(BaseModel):
    """A page of campaigns, newest first, and the total matching the filters."""

    data: list[CampaignPublic]
    count: int
