"""The database side of the model registry: which artifacts exist and which one serves a strategy.

An artifact directory on disk is the model; a ``model_versions`` row records it (who, what data,
which hash) and a ``strategy_activations`` row says which version serves a strategy now and which
served before. Functions here take a session and leave committing to the caller, so a whole
operation (e.g. register then activate) lands in one transaction.

Rules:

- ``activate`` refuses failed or retired versions and pinned strategies (unless ``force``);
  re-activating the version already serving is a no-op.
- ``rollback`` swaps back to the recorded previous version once; a second rollback has nothing to
  roll back to (it never silently re-applies the version that was just rolled back).
- A version's ``status`` is ``active`` while it serves at least one strategy, else ``registered``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import ModelVersion, StrategyActivation
from app.services.errors import (
    InvalidArtifact,
    NothingToRollBack,
    StrategyNotFound,
    StrategyPinned,
    VersionExists,
    VersionNotFound,
    VersionNotServable,
)
from recommenders.artifacts import verify_artifact
from recommenders.errors import ArtifactError

SERVABLE_STATUSES = ("registered", "active")
_ALGORITHM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def verified_manifest(artifact_dir: Path) -> dict[str, Any]:
    """The manifest of an artifact whose files all match their recorded sha256."""
    try:
        return verify_artifact(artifact_dir)
    except ArtifactError as exc:
        # Name the artifact, not where this server keeps it: the message reaches API clients.
        raise InvalidArtifact(str(exc).replace(str(artifact_dir), artifact_dir.name)) from exc


def make_version_id(algorithm: str, trained_at: datetime, sha256: str) -> str:
    """``<algorithm>-<UTC yyyymmddThhmmss>-<first 8 hex of the artifact hash>``."""
    stamp = trained_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{algorithm}-{stamp}-{sha256[:8]}"


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidArtifact(f"manifest holds an invalid timestamp: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _window(data: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    window = data.get("window")
    if isinstance(window, list | tuple) and len(window) == 2:
        return _parse_time(window[0]), _parse_time(window[1])
    return None, None


def register_artifact(
    session: Session,
    artifact_dir: Path,
    *,
    version: str | None = None,
    trained_at: datetime | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Record an artifact directory as a new model version (status ``registered``).

    Every file is checked against the manifest first. Algorithm, params, data fingerprint,
    window and metrics come from the manifest; ``metrics`` given here are merged over the
    manifest's. The artifact hash is the manifest's ``content_sha256`` (a hash over the manifest,
    which lists every file's sha256). The version id is derived from the algorithm,
    ``trained_at`` (default: the manifest's ``created_at``) and that hash unless given.
    """
    artifact_dir = Path(artifact_dir).resolve()
    manifest = verified_manifest(artifact_dir)
    sha = str(manifest["content_sha256"])
    algorithm = str(manifest.get("algorithm"))
    if not _ALGORITHM_NAME.match(algorithm):
        raise InvalidArtifact(f"manifest names an invalid algorithm: {algorithm!r}")
    when = trained_at or _parse_time(manifest.get("created_at")) or datetime.now(UTC)
    version = version or make_version_id(algorithm, when, sha)
    if session.get(ModelVersion, version) is not None:
        raise VersionExists(f"model version {version} is already registered")
    data = manifest.get("data") or {}
    start, end = _window(data)
    fingerprint = data.get("fingerprint")
    merged_metrics = {**dict(manifest.get("metrics") or {}), **dict(metrics or {})}
    row = ModelVersion(
        version=version,
        algorithm=algorithm,
        params=dict(manifest.get("params") or {}),
        trained_at=when,
        data_window_start=start,
        data_window_end=end,
        data_fingerprint=str(fingerprint) if fingerprint else None,
        metrics=merged_metrics,
        artifact_path=str(artifact_dir),
        artifact_sha256=sha,
        status="registered",
    )
    session.add(row)
    session.flush()
    return row


def get_version(session: Session, version: str) -> ModelVersion:
    """The registered version, or :class:`VersionNotFound`."""
    row = session.get(ModelVersion, version)
    if row is None:
        raise VersionNotFound(f"no model version {version!r} is registered")
    return row


def list_versions(session: Session, algorithm: str | None = None) -> list[ModelVersion]:
    """Registered versions, newest first, optionally for one algorithm."""
    query = select(ModelVersion).order_by(
        ModelVersion.trained_at.desc(), ModelVersion.version.desc()
    )
    if algorithm is not None:
        query = query.where(ModelVersion.algorithm == algorithm)
    return list(session.scalars(query))


def active_versions(session: Session) -> dict[str, str]:
    """``{strategy: version}`` for every strategy with an active version."""
    rows = session.execute(select(StrategyActivation.strategy, StrategyActivation.version))
    return {strategy: version for strategy, version in rows}


def _activation_row(session: Session, strategy: str) -> StrategyActivation | None:
    # Row lock on PostgreSQL so two operators (or replicas) changing one strategy serialise;
    # SQLite ignores it (its writers are serialised anyway).
    query = select(StrategyActivation).where(StrategyActivation.strategy == strategy)
    return session.scalars(query.with_for_update()).first()


def get_activation(session: Session, strategy: str) -> StrategyActivation:
    """The activation row of a strategy (locked for update), or :class:`StrategyNotFound`."""
    row = _activation_row(session, strategy)
    if row is None:
        raise StrategyNotFound(f"no version is active for strategy {strategy!r}")
    return row


def _refresh_status(session: Session, *versions: str | None) -> None:
    """Keep ``model_versions.status`` in step with what the activations say."""
    session.flush()
    serving = set(active_versions(session).values())
    for version in versions:
        if version is None:
            continue
        row = session.get(ModelVersion, version)
        if row is not None and row.status in SERVABLE_STATUSES:
            row.status = "active" if version in serving else "registered"


def activate(
    session: Session,
    version: str,
    strategy: str | None = None,
    actor: str | None = None,
    *,
    force: bool = False,
) -> StrategyActivation:
    """Make ``version`` serve ``strategy`` (default: the version's algorithm).

    Refuses a version that failed or was retired, and a pinned strategy unless ``force``.
    """
    row = get_version(session, version)
    if row.status not in SERVABLE_STATUSES:
        raise VersionNotServable(f"model version {version} is {row.status} and cannot be served")
    strategy = strategy or row.algorithm
    current = _activation_row(session, strategy)
    now = datetime.now(UTC)
    if current is None:
        current = StrategyActivation(
            strategy=strategy,
            version=version,
            previous_version=None,
            pinned=False,
            activated_at=now,
            activated_by=actor,
        )
        session.add(current)
        _refresh_status(session, version)
        return current
    if current.version == version:
        return current
    if current.pinned and not force:
        raise StrategyPinned(
            f"strategy {strategy!r} is pinned to {current.version}; unpin it or force the change"
        )
    replaced = current.version
    current.previous_version = replaced
    current.version = version
    current.activated_at = now
    current.activated_by = actor
    _refresh_status(session, version, replaced)
    return current


def rollback(
    session: Session, strategy: str, actor: str | None = None, *, force: bool = False
) -> StrategyActivation:
    """Serve the strategy's previous version again; the rolled-back version stays registered."""
    current = get_activation(session, strategy)
    if current.previous_version is None:
        raise NothingToRollBack(f"strategy {strategy!r} has no previous version to roll back to")
    if current.pinned and not force:
        raise StrategyPinned(
            f"strategy {strategy!r} is pinned to {current.version}; unpin it or force the change"
        )
    target = get_version(session, current.previous_version)
    if target.status not in SERVABLE_STATUSES:
        raise VersionNotServable(
            f"previous version {target.version} is {target.status} and cannot be served"
        )
    replaced = current.version
    current.version = target.version
    current.previous_version = None
    current.activated_at = datetime.now(UTC)
    current.activated_by = actor
    _refresh_status(session, target.version, replaced)
    return current


def pin(session: Session, strategy: str, pinned: bool = True) -> StrategyActivation:
    """Pin (or unpin) a strategy to its current version."""
    current = get_activation(session, strategy)
    current.pinned = pinned
    session.flush()
    return current


def retire(session: Session, version: str) -> ModelVersion:
    """Mark a version retired so it can never be activated again (refused while it serves)."""
    row = get_version(session, version)
    serving = [s for s, v in active_versions(session).items() if v == version]
    if serving:
        raise VersionNotServable(
            f"model version {version} still serves {', '.join(sorted(serving))}; "
            "activate another version first"
        )
    row.status = "retired"
    session.flush()
    return row


def mark_failed(session: Session, version: str) -> ModelVersion:
    """Mark a version failed (e.g. it did not load or verify); refused while it serves."""
    row = get_version(session, version)
    if version in active_versions(session).values():
        raise VersionNotServable(f"model version {version} still serves; activate another first")
    row.status = "failed"
    session.flush()
    return row
