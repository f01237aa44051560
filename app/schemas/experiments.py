"""Experiment schemas: definitions, changes, assignments and results."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["control", "treatment", "holdout"]
Status = Literal["draft", "running", "paused", "stopped"]
SrmStatus = Literal["ok", "warn", "alert", "insufficient"]

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
STRATEGY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class VariantCreate(BaseModel):
    """One arm: what serves it and its weight. Arms share traffic in proportion to weight."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(pattern=NAME_PATTERN)
    role: Role = "treatment"
    weight: float = Field(gt=0, le=1_000_000)
    strategy: str = Field(
        pattern=STRATEGY_PATTERN,
        description="The serving strategy (e.g. `fusion`, `als`, `popularity`).",
    )
    model_version: str | None = Field(
        default=None, max_length=96, description="The version expected to serve (recorded)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Model parameters for offline replay (e.g. fusion weights).",
    )
    k: int | None = Field(default=None, ge=1, le=50, description="List length for this arm.")


class VariantPublic(VariantCreate):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    share: float = Field(description="Fraction of enrolled customers this arm receives.")


class ExperimentCreate(BaseModel):
    """A new experiment (created as a draft)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    description: str | None = Field(default=None, max_length=2_000)
    salt: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Hash salt; random when omitted. Fixed once the experiment has started.",
    )
    traffic: float = Field(default=1.0, ge=0, le=1, description="Share of customers enrolled.")
    placements: list[str] = Field(
        default_factory=list, description="Placements covered; empty means every placement."
    )
    allow_overlap: bool = Field(
        default=False,
        description="May run beside other overlapping experiments that also allow it.",
    )
    variants: list[VariantCreate] = Field(min_length=2, max_length=20)


class ExperimentUpdate(BaseModel):
    """Changes to an experiment. Once started only description and traffic may change."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=2_000)
    salt: str | None = Field(default=None, min_length=1, max_length=64)
    traffic: float | None = Field(default=None, ge=0, le=1)
    placements: list[str] | None = None
    allow_overlap: bool | None = None
    variants: list[VariantCreate] | None = Field(default=None, min_length=2, max_length=20)


class ExperimentPublic(BaseModel):
    key: str
    description: str | None
    salt: str
    status: Status
    traffic: float
    placements: list[str]
    allow_overlap: bool
    variants: list[VariantPublic]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class ExperimentsPublic(BaseModel):
    data: list[ExperimentPublic]
    count: int


class ExperimentChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    actor: str | None
    changes: dict[str, Any]
    changed_at: datetime


class ExperimentChangesPublic(BaseModel):
    data: list[ExperimentChangePublic]
    count: int


class AssignmentPublic(BaseModel):
    """Where a customer lands; computed from the definition (no stored state)."""

    model_config = ConfigDict(protected_namespaces=())

    experiment: str
    customer_id: str
    status: Status
    bucket: int = Field(description="First 8 bytes of SHA-256(salt:customer_id), mod 10,000.")
    slot: int = Field(description="Bytes 8-15 of the same digest, mod 10,000 (picks the arm).")
    enrolled: bool = Field(description="Whether the bucket is inside the traffic share.")
    serving: bool = Field(description="Whether requests are served by the arm right now.")
    variant: str | None
    role: Role | None
    strategy: str | None
    model_version: str | None


class ComparisonPublic(BaseModel):
    """One rate of one arm against control: difference, 95% Wald interval, z-test."""

    metric: Literal["ctr", "conversion"]
    control_rate: float
    variant_rate: float
    difference: float
    ci_low: float
    ci_high: float
    relative_lift: float | None
    z: float | None
    p_value: float | None


class VariantResultPublic(BaseModel):
    variant: str
    role: Role
    expected_share: float
    exposures: int
    customers: int
    clicked_exposures: int
    converted_exposures: int
    ctr: float | None
    conversion: float | None
    comparisons: list[ComparisonPublic] = Field(default_factory=list)
    served_by: dict[str, int] = Field(
        default_factory=dict,
        description="Exposures per strategy that actually served (a fallback shows up here).",
    )


class SrmPublic(BaseModel):
    """Sample-ratio mismatch: unique customers per arm against the weights."""

    chi_square: float | None
    p_value: float | None
    status: SrmStatus
    message: str


class ResultsPublic(BaseModel):
    experiment: str
    status: Status
    control: str
    computed_at: datetime
    definitions: dict[str, str]
    variants: list[VariantResultPublic]
    srm: SrmPublic
