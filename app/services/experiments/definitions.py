"""Creating, changing, starting, pausing and stopping experiments; every change is recorded.

Rules (checked here, so the API and the CLI behave the same):

- at least two arms, unique names, positive weights, exactly one ``control``, at most one
  ``holdout``;
- a draft may change anything; once started (running or paused) only ``description`` and
  ``traffic`` may change, because the salt, the arms and their weights decide who is in which
  arm; a stopped experiment is final;
- ``draft|paused -> running`` needs a traffic share above zero and no other running experiment
  on an overlapping placement (no placements = every placement) unless both declare
  ``allow_overlap``;
- ``running -> paused``; ``draft|running|paused -> stopped``.

Functions take a session and leave committing to the caller.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Experiment, ExperimentChange, ExperimentVariant
from app.schemas.experiments import (
    ExperimentCreate,
    ExperimentPublic,
    ExperimentUpdate,
    VariantCreate,
    VariantPublic,
)
from app.services.experiments.errors import (
    ExperimentConflict,
    ExperimentNotFound,
    InvalidExperiment,
)

EDITABLE_WHEN_STARTED = frozenset({"description", "traffic"})
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"draft", "paused"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "stop": (frozenset({"draft", "running", "paused"}), "stopped"),
}


def check_variants(variants: Sequence[VariantCreate]) -> None:
    """Raise :class:`InvalidExperiment` unless the arms form a valid experiment."""
    if len(variants) < 2:
        raise InvalidExperiment("an experiment needs at least two variants")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidExperiment(f"variant names must be unique: {', '.join(duplicates)}")
    if any(not v.weight > 0 for v in variants):
        raise InvalidExperiment("every variant needs a weight above zero")
    controls = [v.name for v in variants if v.role == "control"]
    if len(controls) != 1:
        raise InvalidExperiment(
            f"exactly one variant must have role 'control' (found {len(controls)})"
        )
    holdouts = [v.name for v in variants if v.role == "holdout"]
    if len(holdouts) > 1:
        raise InvalidExperiment(f"at most one holdout variant is allowed: {', '.join(holdouts)}")


def get_experiment(session: Session, key: str) -> Experiment:
    experiment = session.scalar(select(Experiment).where(Experiment.key == key))
    if experiment is None:
        raise ExperimentNotFound(f"no experiment with key {key!r}")
    return experiment


def variants_of(session: Session, experiment: Experiment) -> list[ExperimentVariant]:
    return list(
        session.scalars(
            select(ExperimentVariant)
            .where(ExperimentVariant.experiment_id == experiment.id)
            .order_by(ExperimentVariant.position)
        )
    )


def public(session: Session, experiment: Experiment) -> ExperimentPublic:
    variants = variants_of(session, experiment)
    total = sum(v.weight for v in variants) or 1.0
    return ExperimentPublic(
        key=experiment.key,
        description=experiment.description,
        salt=experiment.salt,
        status=experiment.status,
        traffic=experiment.traffic,
        placements=list(experiment.placements or []),
        allow_overlap=experiment.allow_overlap,
        variants=[
            VariantPublic(
                name=v.name,
                role=v.role,
                weight=v.weight,
                strategy=v.strategy,
                model_version=v.model_version,
                params=dict(v.params or {}),
                k=v.k,
                share=v.weight / total,
            )
            for v in variants
        ],
        created_at=experiment.created_at,
        updated_at=experiment.updated_at,
        started_at=experiment.started_at,
        stopped_at=experiment.stopped_at,
    )


def list_experiments(session: Session, status: str | None = None) -> list[Experiment]:
    query = select(Experiment).order_by(Experiment.created_at.desc(), Experiment.key)
    if status is not None:
        query = query.where(Experiment.status == status)
    return list(session.scalars(query))


def changes_of(session: Session, experiment: Experiment) -> list[ExperimentChange]:
    return list(
        session.scalars(
            select(ExperimentChange)
            .where(ExperimentChange.experiment_id == experiment.id)
            .order_by(ExperimentChange.changed_at, ExperimentChange.id)
        )
    )


def _record(
    session: Session, experiment: Experiment, action: str, actor: str | None, changes: Any
) -> None:
    session.add(
        ExperimentChange(
            experiment_id=experiment.id,
            action=action,
            actor=actor,
            changes=changes,
            changed_at=datetime.now(UTC),
        )
    )


def _placements(values: Sequence[str]) -> list[str]:
    cleaned = sorted({p.strip() for p in values if p.strip()})
    if any(len(p) > 64 for p in cleaned):
        raise InvalidExperiment("placement names are at most 64 characters")
    return cleaned


def _variant_rows(experiment_id: int, variants: Sequence[VariantCreate]) -> list[Any]:
    return [
        ExperimentVariant(
            experiment_id=experiment_id,
            position=position,
            name=v.name,
            role=v.role,
            weight=float(v.weight),
            strategy=v.strategy,
            model_version=v.model_version,
            params=dict(v.params),
            k=v.k,
        )
        for position, v in enumerate(variants)
    ]


def _variant_dicts(variants: Sequence[VariantCreate]) -> list[dict[str, Any]]:
    return [v.model_dump(mode="json") for v in variants]


def create_experiment(
    session: Session, data: ExperimentCreate, actor: str | None = None
) -> Experiment:
    """Create a draft; refuses a taken key or invalid arms."""
    check_variants(data.variants)
    if session.scalar(select(Experiment.id).where(Experiment.key == data.key)) is not None:
        raise ExperimentConflict(f"an experiment with key {data.key!r} already exists")
    now = datetime.now(UTC)
    experiment = Experiment(
        key=data.key,
        description=data.description,
        salt=data.salt or secrets.token_hex(8),
        status="draft",
        traffic=data.traffic,
        placements=_placements(data.placements),
        allow_overlap=data.allow_overlap,
        created_at=now,
        updated_at=now,
    )
    session.add(experiment)
    session.flush()
    session.add_all(_variant_rows(experiment.id, data.variants))
    definition = data.model_dump(mode="json")
    definition["salt"] = experiment.salt
    definition["placements"] = experiment.placements
    _record(session, experiment, "created", actor, definition)
    session.flush()
    return experiment


def update_experiment(
    session: Session, key: str, data: ExperimentUpdate, actor: str | None = None
) -> Experiment:
    """Apply the fields set in ``data``; records ``{field: [before, after]}``."""
    experiment = get_experiment(session, key)
    fields = {name for name in data.model_fields_set if getattr(data, name) is not None}
    fields |= {"description"} & data.model_fields_set  # description may be cleared
    if experiment.status == "stopped":
        raise ExperimentConflict(f"experiment {key!r} is stopped and can no longer change")
    if experiment.status != "draft" and fields - EDITABLE_WHEN_STARTED:
        frozen = ", ".join(sorted(fields - EDITABLE_WHEN_STARTED))
        raise ExperimentConflict(
            f"experiment {key!r} has started: only description and traffic may change "
            f"(refused: {frozen}); changing the arms would move customers between them"
        )
    if experiment.status == "running" and "traffic" in fields and not (data.traffic or 0) > 0:
        raise ExperimentConflict("pause or stop a running experiment instead of setting traffic 0")
    changes: dict[str, Any] = {}
    if "variants" in fields and data.variants is not None:
        check_variants(data.variants)
        before = [
            VariantCreate.model_validate(v, from_attributes=True)
            for v in variants_of(session, experiment)
        ]
        for row in variants_of(session, experiment):
            session.delete(row)
        session.flush()
        session.add_all(_variant_rows(experiment.id, data.variants))
        changes["variants"] = [_variant_dicts(before), _variant_dicts(data.variants)]
    for name in ("description", "salt", "traffic", "allow_overlap", "placements"):
        if name not in fields:
            continue
        value = getattr(data, name)
        if name == "placements":
            value = _placements(value)
        old = getattr(experiment, name)
        if old != value:
            changes[name] = [old, value]
            setattr(experiment, name, value)
    if changes:
        experiment.updated_at = datetime.now(UTC)
        _record(session, experiment, "updated", actor, changes)
    session.flush()
    return experiment


def _overlaps(a: Experiment, b: Experiment) -> bool:
    pa, pb = set(a.placements or ()), set(b.placements or ())
    return not pa or not pb or bool(pa & pb)


def change_status(session: Session, key: str, action: str, actor: str | None = None) -> Experiment:
    """``start``, ``pause`` or ``stop`` an experiment (see the module rules)."""
    if action not in TRANSITIONS:
        raise InvalidExperiment(f"unknown action {action!r}; use start, pause or stop")
    experiment = get_experiment(session, key)
    allowed_from, target = TRANSITIONS[action]
    if experiment.status not in allowed_from:
        raise ExperimentConflict(
            f"cannot {action} experiment {key!r}: it is {experiment.status} "
            f"({action} works from {', '.join(sorted(allowed_from))})"
        )
    if action == "start":
        _check_startable(session, experiment)
    now = datetime.now(UTC)
    before = experiment.status
    experiment.status = target
    experiment.updated_at = now
    if action == "start" and experiment.started_at is None:
        experiment.started_at = now
    if action == "stop":
        experiment.stopped_at = now
    _record(session, experiment, action, actor, {"status": [before, target]})
    session.flush()
    return experiment


def _check_startable(session: Session, experiment: Experiment) -> None:
    if not experiment.traffic > 0:
        raise ExperimentConflict(f"experiment {experiment.key!r} has traffic 0; raise it first")
    check_variants(
        [
            VariantCreate.model_validate(v, from_attributes=True)
            for v in variants_of(session, experiment)
        ]
    )
    running = session.scalars(
        select(Experiment).where(Experiment.status == "running", Experiment.id != experiment.id)
    ).all()
    clashes = [
        other.key
        for other in running
        if _overlaps(experiment, other) and not (experiment.allow_overlap and other.allow_overlap)
    ]
    if clashes:
        raise ExperimentConflict(
            f"experiment {experiment.key!r} overlaps running experiment(s) "
            f"{', '.join(sorted(clashes))} on the same placement; stop them, use other "
            "placements, or declare allow_overlap on both"
        )
