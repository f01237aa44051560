"""Model registry schemas: versions with their metrics, and what serves each strategy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelVersionPublic(BaseModel):
    """A registered model version."""

    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    version: str
    algorithm: str
    status: str = Field(description="registered, active (serves a strategy), retired or failed.")
    params: dict[str, Any]
    metrics: dict[str, Any]
    trained_at: datetime
    data_window_start: datetime | None
    data_window_end: datetime | None
    data_fingerprint: str | None
    artifact_sha256: str
    created_at: datetime
    serving: list[str] = Field(
        default_factory=list, description="Strategies this version serves now."
    )


class StrategyActivationPublic(BaseModel):
    """Which version serves a strategy, what served before, and what this replica has loaded."""

    model_config = ConfigDict(from_attributes=True)

    strategy: str
    version: str
    previous_version: str | None
    pinned: bool
    activated_at: datetime
    activated_by: str | None
    loaded_version: str | None = Field(
        default=None, description="The version this API replica serves from memory right now."
    )


class ModelVersionsPublic(BaseModel):
    """Registered versions (newest first) and the current activations."""

    data: list[ModelVersionPublic]
    count: int
    activations: list[StrategyActivationPublic]


class ModelActivate(BaseModel):
    """Body of ``POST /v1/models/{version}/activate`` (optional)."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="Strategy to serve with this version (default: its algorithm).",
    )
    force: bool = Field(default=False, description="Override a pinned strategy.")


class StrategyRollback(BaseModel):
    """Body of ``POST /v1/strategies/{strategy}/rollback`` (optional)."""

    model_config = ConfigDict(extra="forbid")

    force: bool = Field(default=False, description="Override a pinned strategy.")


class StrategyPinUpdate(BaseModel):
    """Body of ``PUT /v1/strategies/{strategy}/pin``."""

    model_config = ConfigDict(extra="forbid")

    pinned: bool
