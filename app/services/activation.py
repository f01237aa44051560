"""Model activation over the API: load and verify first, record in the registry, then swap.

The order is what keeps serving safe. The new artifact is loaded and checked (every file's
sha256, and the manifest hash against the one recorded at registration) while the old version
keeps serving; only then is the registry changed and committed, and only after the commit is the
loaded model swapped into the in-memory store. Any failure leaves both the registry and the
store as they were.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import ModelVersion, StrategyActivation
from app.schemas.models import ModelVersionPublic, ModelVersionsPublic, StrategyActivationPublic
from app.services import registry
from app.services.errors import InvalidArtifact, NothingToRollBack, VersionNotServable
from app.services.model_store import LoadedModel, ModelStore

ACTOR = "api"


def _activation_public(row: StrategyActivation, store: ModelStore) -> StrategyActivationPublic:
    loaded = store.get(row.strategy)
    public = StrategyActivationPublic.model_validate(row)
    public.loaded_version = loaded.version if loaded is not None else None
    return public


def list_models(
    session: Session, store: ModelStore, algorithm: str | None = None
) -> ModelVersionsPublic:
    """Every registered version with its metrics, and every strategy's activation."""
    rows = registry.list_versions(session, algorithm)
    activations = list(
        session.scalars(select(StrategyActivation).order_by(StrategyActivation.strategy))
    )
    serving: dict[str, list[str]] = {}
    for activation in activations:
        serving.setdefault(activation.version, []).append(activation.strategy)
    data = [
        ModelVersionPublic.model_validate(row).model_copy(
            update={"serving": sorted(serving.get(row.version, []))}
        )
        for row in rows
    ]
    return ModelVersionsPublic(
        data=data,
        count=len(data),
        activations=[_activation_public(a, store) for a in activations],
    )


def get_model(session: Session, version: str) -> ModelVersionPublic:
    """One registered version."""
    row = registry.get_version(session, version)
    serving = [s for s, v in registry.active_versions(session).items() if v == version]
    return ModelVersionPublic.model_validate(row).model_copy(update={"serving": sorted(serving)})


def _load_verified(store: ModelStore, strategy: str, row: ModelVersion) -> LoadedModel:
    """Load ``row``'s artifact and check it is byte for byte the artifact that was registered."""
    if row.status not in registry.SERVABLE_STATUSES:
        raise VersionNotServable(
            f"model version {row.version} is {row.status} and cannot be served"
        )
    path = store.resolve(row.artifact_path)
    manifest = registry.verified_manifest(Path(path))
    if manifest.get("content_sha256") != row.artifact_sha256:
        raise InvalidArtifact(
            f"the artifact of model version {row.version} at {path} changed since it was "
            "registered; register the new artifact as a new version"
        )
    return store.load(strategy, row.version, path)


def activate_version(
    session: Session,
    store: ModelStore,
    version: str,
    strategy: str | None = None,
    *,
    force: bool = False,
) -> StrategyActivationPublic:
    """Serve ``version`` for ``strategy`` (default: its algorithm) once it loads and verifies."""
    row = registry.get_version(session, version)
    strategy = strategy or row.algorithm
    loaded = _load_verified(store, strategy, row)
    activation = registry.activate(session, version, strategy, ACTOR, force=force)
    session.commit()
    store.install(loaded)
    return _activation_public(activation, store)


def rollback_strategy(
    session: Session, store: ModelStore, strategy: str, *, force: bool = False
) -> StrategyActivationPublic:
    """Serve the strategy's previous version again, once it loads and verifies."""
    current = registry.get_activation(session, strategy)
    if current.previous_version is None:
        raise NothingToRollBack(f"strategy {strategy!r} has no previous version to roll back to")
    target = registry.get_version(session, current.previous_version)
    loaded = _load_verified(store, strategy, target)
    activation = registry.rollback(session, strategy, ACTOR, force=force)
    session.commit()
    store.install(loaded)
    return _activation_public(activation, store)


def pin_strategy(
    session: Session, store: ModelStore, strategy: str, pinned: bool
) -> StrategyActivationPublic:
    """Pin a strategy to its current version (automatic activations leave it alone), or unpin."""
    activation = registry.pin(session, strategy, pinned)
    session.commit()
    return _activation_public(activation, store)
