"""The model registry over the API (admin): list versions, activate, roll back, pin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from app.api.auth import AUTH_RESPONSES, require_scope
from app.api.deps import ModelStoreDep, SessionDep
from app.schemas.models import (
    ModelActivate,
    ModelVersionPublic,
    ModelVersionsPublic,
    StrategyActivationPublic,
    StrategyPinUpdate,
    StrategyRollback,
)
from app.schemas.problems import problem_responses
from app.services import activation

router = APIRouter(tags=["models"], dependencies=[require_scope("admin")], responses=AUTH_RESPONSES)

Version = Annotated[str, Path(min_length=1, max_length=96, description="Model version id.")]
Strategy = Annotated[str, Path(min_length=1, max_length=32, description="Strategy name.")]


@router.get(
    "/v1/models",
    operation_id="models-list",
    response_model=ModelVersionsPublic,
    responses=problem_responses(403),
)
def list_models(
    session: SessionDep,
    store: ModelStoreDep,
    algorithm: Annotated[str | None, Query(max_length=32)] = None,
) -> ModelVersionsPublic:
    """List registered model versions with their metrics, and what serves each strategy."""
    return activation.list_models(session, store, algorithm)


@router.get(
    "/v1/models/{version}",
    operation_id="models-get",
    response_model=ModelVersionPublic,
    responses=problem_responses(403, 404),
)
def read_model(version: Version, session: SessionDep) -> ModelVersionPublic:
    """Read one registered model version."""
    return activation.get_model(session, version)


@router.post(
    "/v1/models/{version}/activate",
    operation_id="models-activate",
    response_model=StrategyActivationPublic,
    responses=problem_responses(403, 404, 409),
)
def activate_model(
    version: Version,
    session: SessionDep,
    store: ModelStoreDep,
    body: Annotated[ModelActivate | None, Body()] = None,
) -> StrategyActivationPublic:
    """Serve a version once its artifact loads and verifies; a bad artifact leaves the old one."""
    body = body or ModelActivate()
    return activation.activate_version(session, store, version, body.strategy, force=body.force)


@router.post(
    "/v1/strategies/{strategy}/rollback",
    operation_id="models-rollback",
    response_model=StrategyActivationPublic,
    responses=problem_responses(403, 404, 409),
)
def rollback_strategy(
    strategy: Strategy,
    session: SessionDep,
    store: ModelStoreDep,
    body: Annotated[StrategyRollback | None, Body()] = None,
) -> StrategyActivationPublic:
    """Serve the strategy's previous version again (loaded and verified first)."""
    body = body or StrategyRollback()
    return activation.rollback_strategy(session, store, strategy, force=body.force)


@router.put(
    "/v1/strategies/{strategy}/pin",
    operation_id="models-pin",
    response_model=StrategyActivationPublic,
    responses=problem_responses(403, 404),
)
def pin_strategy(
    strategy: Strategy, body: StrategyPinUpdate, session: SessionDep, store: ModelStoreDep
) -> StrategyActivationPublic:
    """Pin a strategy to its current version, or unpin it."""
    return activation.pin_strategy(session, store, strategy, body.pinned)
