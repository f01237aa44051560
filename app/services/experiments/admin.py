"""One call per admin operation: change, commit, answer with the public schema.

The API routes and ``finrec experiments`` both call these, so they behave the same.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.schemas.experiments import (
    AssignmentPublic,
    ExperimentChangePublic,
    ExperimentChangesPublic,
    ExperimentCreate,
    ExperimentPublic,
    ExperimentsPublic,
    ExperimentUpdate,
)
from app.services.experiments import definitions as D
from app.services.experiments.assignment import bucket_of, plan_of, slot_of


def create(session: Session, data: ExperimentCreate, actor: str | None) -> ExperimentPublic:
    experiment = D.create_experiment(session, data, actor)
    session.commit()
    return D.public(session, experiment)


def update(
    session: Session, key: str, data: ExperimentUpdate, actor: str | None
) -> ExperimentPublic:
    experiment = D.update_experiment(session, key, data, actor)
    session.commit()
    return D.public(session, experiment)


def change_status(session: Session, key: str, action: str, actor: str | None) -> ExperimentPublic:
    experiment = D.change_status(session, key, action, actor)
    session.commit()
    return D.public(session, experiment)


def read(session: Session, key: str) -> ExperimentPublic:
    return D.public(session, D.get_experiment(session, key))


def list_all(session: Session, status: str | None = None) -> ExperimentsPublic:
    rows = [D.public(session, e) for e in D.list_experiments(session, status)]
    return ExperimentsPublic(data=rows, count=len(rows))


def changes(session: Session, key: str) -> ExperimentChangesPublic:
    rows = D.changes_of(session, D.get_experiment(session, key))
    data = [ExperimentChangePublic.model_validate(r) for r in rows]
    return ExperimentChangesPublic(data=data, count=len(data))


def assignment(session: Session, key: str, customer_id: str) -> AssignmentPublic:
    """Where ``customer_id`` lands in ``key``, whatever the experiment's status."""
    experiment = D.get_experiment(session, key)
    plan = plan_of(experiment, D.variants_of(session, experiment))
    assigned = plan.assign(customer_id)
    return AssignmentPublic(
        experiment=key,
        customer_id=customer_id,
        status=experiment.status,
        bucket=bucket_of(experiment.salt, customer_id),
        slot=slot_of(experiment.salt, customer_id),
        enrolled=assigned is not None,
        serving=assigned is not None and experiment.status == "running",
        variant=assigned.variant if assigned else None,
        role=assigned.role if assigned else None,
        strategy=assigned.strategy if assigned else None,
        model_version=assigned.model_version if assigned else None,
    )
