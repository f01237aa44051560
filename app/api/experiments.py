"""Experiments: admin definitions and state changes; assignments for readers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from app.api.auth import AUTH_RESPONSES, require_scope
from app.api.deps import SessionDep, SettingsDep
from app.schemas.experiments import (
    KEY_PATTERN,
    AssignmentPublic,
    ExperimentChangesPublic,
    ExperimentCreate,
    ExperimentPublic,
    ExperimentsPublic,
    ExperimentUpdate,
    ResultsPublic,
    Status,
)
from app.schemas.problems import problem_responses
from app.services.experiments import admin
from app.services.experiments.assignment import ExperimentBook
from app.services.experiments.results import experiment_results, results_chart

router = APIRouter(prefix="/v1/experiments", tags=["experiments"], responses=AUTH_RESPONSES)

ADMIN = [require_scope("admin")]

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="Experiment key.")]
Actor = Annotated[
    str | None,
    Header(alias="X-Finrec-Actor", max_length=64, description="Who makes the change (audit)."),
]


def _refresh_local(request: Request) -> None:
    """Apply a state change on this replica at once; others pick it up on their next refresh."""
    book = getattr(request.app.state, "experiments", None)
    if isinstance(book, ExperimentBook):
        book.refresh()


@router.post(
    "",
    operation_id="experiments-create",
    status_code=201,
    response_model=ExperimentPublic,
    dependencies=ADMIN,
    responses=problem_responses(403, 409),
)
def create_experiment(
    body: ExperimentCreate, session: SessionDep, actor: Actor = None
) -> ExperimentPublic:
    """Create an experiment as a draft."""
    return admin.create(session, body, actor)


@router.get(
    "",
    operation_id="experiments-list",
    response_model=ExperimentsPublic,
    dependencies=ADMIN,
    responses=problem_responses(403),
)
def list_experiments(
    session: SessionDep, status: Annotated[Status | None, Query()] = None
) -> ExperimentsPublic:
    """List experiments, newest first."""
    return admin.list_all(session, status)


@router.get(
    "/{key}",
    operation_id="experiments-get",
    response_model=ExperimentPublic,
    dependencies=ADMIN,
    responses=problem_responses(403, 404),
)
def read_experiment(key: Key, session: SessionDep) -> ExperimentPublic:
    """Read one experiment with its variants."""
    return admin.read(session, key)


@router.patch(
    "/{key}",
    operation_id="experiments-update",
    response_model=ExperimentPublic,
    dependencies=ADMIN,
    responses=problem_responses(403, 404, 409),
)
def update_experiment(
    key: Key, body: ExperimentUpdate, session: SessionDep, request: Request, actor: Actor = None
) -> ExperimentPublic:
    """Change an experiment; once started only description and traffic may change."""
    result = admin.update(session, key, body, actor)
    _refresh_local(request)
    return result


def _state_route(action: str, summary: str) -> None:
    def change(
        key: Key, session: SessionDep, request: Request, actor: Actor = None
    ) -> ExperimentPublic:
        result = admin.change_status(session, key, action, actor)
        _refresh_local(request)
        return result

    change.__doc__ = summary
    router.add_api_route(
        f"/{{key}}/{action}",
        change,
        methods=["POST"],
        operation_id=f"experiments-{action}",
        response_model=ExperimentPublic,
        dependencies=ADMIN,
        responses=problem_responses(403, 404, 409),
        name=f"{action}_experiment",
    )


_state_route("start", "Start (or resume) an experiment: its arms serve from the next refresh.")
_state_route("pause", "Pause a running experiment: customers are served as usual meanwhile.")
_state_route("stop", "Stop an experiment for good.")


@router.get(
    "/{key}/changes",
    operation_id="experiments-changes",
    response_model=ExperimentChangesPublic,
    dependencies=ADMIN,
    responses=problem_responses(403, 404),
)
def list_changes(key: Key, session: SessionDep) -> ExperimentChangesPublic:
    """Every recorded change of an experiment, oldest first."""
    return admin.changes(session, key)


@router.get(
    "/{key}/assignment/{customer_id}",
    operation_id="experiments-assignment",
    response_model=AssignmentPublic,
    dependencies=[require_scope("recommendations:read")],
    responses=problem_responses(404),
)
def read_assignment(
    key: Key,
    customer_id: Annotated[str, Path(min_length=1, max_length=64)],
    session: SessionDep,
) -> AssignmentPublic:
    """The customer's bucket and arm (deterministic; computed, never stored)."""
    return admin.assignment(session, key, customer_id)


@router.get(
    "/{key}/results",
    operation_id="experiments-results",
    response_model=ResultsPublic,
    dependencies=ADMIN,
    responses=problem_responses(404),
)
def read_results(key: Key, session: SessionDep, settings: SettingsDep) -> ResultsPublic:
    """Per-arm exposures, customers, CTR and conversion vs control, with the SRM check."""
    return experiment_results(session, key, settings.takeup_event_types)


@router.get(
    "/{key}/results/chart",
    operation_id="experiments-results-chart",
    response_class=Response,
    dependencies=ADMIN,
    responses={
        200: {"content": {"image/png": {}}, "description": "PNG chart"},
        **problem_responses(404),
    },
)
def read_results_chart(key: Key, session: SessionDep, settings: SettingsDep) -> Response:
    """The results as a PNG chart (rates per arm with 95% intervals)."""
    results = experiment_results(session, key, settings.takeup_event_types)
    return Response(results_chart(results), media_type="image/png")
