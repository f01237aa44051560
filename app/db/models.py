"""The bank data model: customers, products, interactions, holdings and the model registry."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow

RISK_CLASSES = ("C1", "C2", "C3", "C4", "C5")
RISK_LEVELS = ("R1", "R2", "R3", "R4", "R5")
PRODUCT_STATUSES = ("draft", "active", "suspended", "retired")


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(
            "risk_class IS NULL OR risk_class IN ('C1','C2','C3','C4','C5')", name="risk_class"
        ),
        CheckConstraint("age IS NULL OR (age >= 0 AND age <= 130)", name="age_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), unique=True)
    segment: Mapped[str | None] = mapped_column(String(64))
    age: Mapped[int | None]
    income_band: Mapped[str | None] = mapped_column(String(32))
    risk_class: Mapped[str | None] = mapped_column(String(2))
    risk_assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    channel: Mapped[str | None] = mapped_column(String(32))
    consent_personalization: Mapped[bool] = mapped_column(Boolean, default=True)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("risk_level IN ('R1','R2','R3','R4','R5')", name="risk_level"),
        CheckConstraint("status IN ('draft','active','suspended','retired')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    product_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64), index=True)
    risk_level: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    launch_date: Mapped[date | None] = mapped_column(Date)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Interaction(Base):
    """One event in the interaction log; ``event_id`` makes every load idempotent."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer_time", "customer_pk", "occurred_at"),
        Index("ix_interactions_occurred_at", "occurred_at"),
        Index("ix_interactions_recommendation_id", "recommendation_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    customer_pk: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    product_pk: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str | None] = mapped_column(String(32))
    recommendation_id: Mapped[str | None] = mapped_column(String(64))


class Holding(Base):
    """What a customer holds now: derived from holding events, or imported directly."""

    __tablename__ = "holdings"

    customer_pk: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    product_pk: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(16), default="event")
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ImportRun(Base):
    """An audit row per import: what file, how many rows loaded, skipped and rejected."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rows_read: Mapped[int] = mapped_column(default=0)
    rows_written: Mapped[int] = mapped_column(default=0)
    rows_unchanged: Mapped[int] = mapped_column(default=0)
    rows_rejected: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")


class ModelVersion(Base):
    """A trained artifact registered for serving."""

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint("status IN ('registered','active','retired','failed')", name="status"),
    )

    version: Mapped[str] = mapped_column(String(96), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(32), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    data_window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    data_fingerprint: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    artifact_path: Mapped[str] = mapped_column(Text)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="registered")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StrategyActivation(Base):
    """Which model version serves a strategy now, and what served before (for rollback)."""

    __tablename__ = "strategy_activations"
    __table_args__ = (UniqueConstraint("strategy", name="uq_strategy_activations_strategy"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    strategy: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"))
    previous_version: Mapped[str | None] = mapped_column(String(96))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_by: Mapped[str | None] = mapped_column(String(64))


class Exposure(Base):
    """A decision record: what one recommendation response showed, and why (written buffered)."""

    __tablename__ = "exposures"
    __table_args__ = (
        Index("ix_exposures_customer_time", "customer_id", "served_at"),
        Index("ix_exposures_served_at", "served_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # External ids, no foreign keys: the log must accept rows even for a customer deleted since.
    recommendation_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(96))
    served_from: Mapped[str] = mapped_column(String(16))
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str | None] = mapped_column(String(32))
    placement: Mapped[str | None] = mapped_column(String(64))
    experiment: Mapped[str | None] = mapped_column(String(64))
    variant: Mapped[str | None] = mapped_column(String(64))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    served_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Decision-record fields (docs/decisions.md); NULL on rows logged before they existed.
    policy_version: Mapped[str | None] = mapped_column(String(32))
    basis: Mapped[str | None] = mapped_column(String(24))  # personalised | non_personalised | ...
    risk_class: Mapped[int | None] = mapped_column(SmallInteger)  # effective class, 0 = none
    removed: Mapped[list[list[str]] | None] = mapped_column(JSONType)  # [[product_id, rule]]


class Campaign(Base):
    """An admin-configured boost or pin of one product; served items it touches are promotions."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("boost >= 0", name="boost_non_negative"),
        CheckConstraint("pin_rank IS NULL OR pin_rank >= 1", name="pin_rank_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    product_id: Mapped[str] = mapped_column(String(64), index=True)
    placement: Mapped[str | None] = mapped_column(String(64))  # None = every placement
    boost: Mapped[float] = mapped_column(Float, default=0.0)
    pin_rank: Mapped[int | None]
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Experiment(Base):
    """An A/B test: customers are bucketed by a hash of ``salt`` and their id (no stored state)."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("status IN ('draft','running','paused','stopped')", name="status"),
        CheckConstraint("traffic >= 0 AND traffic <= 1", name="traffic_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    salt: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    traffic: Mapped[float] = mapped_column(Float, default=1.0)
    placements: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty = every one
    allow_overlap: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExperimentVariant(Base):
    """One arm: the strategy that serves it and its share of the experiment's traffic."""

    __tablename__ = "experiment_variants"
    __table_args__ = (
        UniqueConstraint("experiment_id", "name", name="uq_experiment_variants_name"),
        CheckConstraint("role IN ('control','treatment','holdout')", name="role"),
        CheckConstraint("weight > 0", name="weight_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    position: Mapped[int]  # order of the arms on the weight line; fixed once started
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default="treatment")
    weight: Mapped[float] = mapped_column(Float)
    strategy: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(96))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    k: Mapped[int | None]


class ExperimentChange(Base):
    """The audit trail: every create, update and state change of an experiment."""

    __tablename__ = "experiment_changes"
    __table_args__ = (Index("ix_experiment_changes_experiment", "experiment_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# Experiment results read an experiment's exposures by arm; declared here, beside the experiment
# tables, so migration 0003 owns it.
Index("ix_exposures_experiment_variant", Exposure.experiment, Exposure.variant)


class Batch(Base):
    """One precompute run: a model's lists for every customer, published when every chunk is in.

    ``batch_id`` is derived from what the run computes (strategy, model version, k, chunking,
    sharding, as-of time and a fingerprint of the data), so rerunning the same command after a
    crash finds the same batch and resumes it.
    """

    __tablename__ = "precompute_batches"
    __table_args__ = (
        CheckConstraint("status IN ('running','complete')", name="status"),
        Index("ix_precompute_batches_strategy_current", "strategy", "is_current"),
    )

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(96))
    k: Mapped[int]
    chunk_size: Mapped[int]
    shard_count: Mapped[int]
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    customers_total: Mapped[int]
    chunks_total: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="running")
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BatchChunk(Base):
    """A committed chunk: written in the same transaction as its rows, so it is all or nothing."""

    __tablename__ = "precompute_batch_chunks"

    batch_id: Mapped[str] = mapped_column(
        ForeignKey("precompute_batches.batch_id", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(primary_key=True)
    shard_index: Mapped[int]
    customers: Mapped[int]
    rows: Mapped[int]
    outcomes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    done_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PrecomputedRecommendation(Base):
    """One ranked item of one customer's list in one batch (bulk written, so no foreign keys)."""

    __tablename__ = "precomputed_recommendations"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rank: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    reason_codes: Mapped[str] = mapped_column(String(200), default="")


class ApiKey(Base):
    """An API key: only a salted hash of its secret is stored; ``id`` is the public key id."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated scope names
    salt: Mapped[str] = mapped_column(String(64))  # hex
    hash: Mapped[str] = mapped_column(String(64))  # hex HMAC-SHA256(salt, secret)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
