"""The model registry: register, activate, roll back, pin, retire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.services import registry
from app.services.errors import (
    InvalidArtifact,
    NothingToRollBack,
    StrategyNotFound,
    StrategyPinned,
    VersionExists,
    VersionNotFound,
    VersionNotServable,
)


def _artifact(root: Path, name: str, algorithm: str = "als", **extra: object) -> Path:
    path = root / name
    path.mkdir()
    manifest = {
        "algorithm": algorithm,
        "format_version": 1,
        "params": {"factors": 8},
        "data_fingerprint": "f" * 64,
        "window": {"start": "2024-01-01T00:00:00+00:00", "end": "2024-06-30T12:00:00+00:00"},
        "metrics": {"ndcg@10": 0.3},
        "name": name,
        **extra,
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


def test_register_records_manifest_and_hash(session: Session, tmp_path: Path) -> None:
    path = _artifact(tmp_path, "a")
    when = datetime(2024, 7, 1, 8, 30, 5, tzinfo=UTC)
    row = registry.register_artifact(session, path, trained_at=when, metrics={"recall@10": 0.5})
    session.commit()

    sha = registry.manifest_sha256(path)
    assert row.version == f"als-20240701T083005-{sha[:8]}"
    assert row.artifact_sha256 == sha
    assert row.status == "registered"
    assert row.params == {"factors": 8}
    assert row.metrics == {"ndcg@10": 0.3, "recall@10": 0.5}
    assert row.data_window_start == datetime(2024, 1, 1, tzinfo=UTC)
    assert row.data_window_end == datetime(2024, 6, 30, 12, tzinfo=UTC)
    assert row.data_fingerprint == "f" * 64
    assert Path(row.artifact_path) == path.resolve()

    again = registry.get_version(session, row.version)
    assert again.trained_at == when


def test_register_twice_and_bad_artifacts_are_refused(session: Session, tmp_path: Path) -> None:
    path = _artifact(tmp_path, "a")
    registry.register_artifact(session, path, version="v1")
    with pytest.raises(VersionExists):
        registry.register_artifact(session, path, version="v1")
    with pytest.raises(InvalidArtifact, match="cannot read"):
        registry.register_artifact(session, tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(InvalidArtifact, match="not valid JSON"):
        registry.register_artifact(session, broken)


def test_activate_rollback_and_status(session: Session, tmp_path: Path) -> None:
    v1 = registry.register_artifact(session, _artifact(tmp_path, "a"), version="als-1").version
    v2 = registry.register_artifact(session, _artifact(tmp_path, "b"), version="als-2").version

    registry.activate(session, v1, actor="ops")
    assert registry.active_versions(session) == {"als": v1}
    registry.activate(session, v2)
    session.commit()
    activation = registry.get_activation(session, "als")
    assert (activation.version, activation.previous_version) == (v2, v1)
    assert registry.get_version(session, v2).status == "active"
    assert registry.get_version(session, v1).status == "registered"

    registry.rollback(session, "als", actor="ops")
    session.commit()
    assert registry.active_versions(session) == {"als": v1}
    assert registry.get_version(session, v1).status == "active"
    assert registry.get_version(session, v2).status == "registered"
    with pytest.raises(NothingToRollBack):
        registry.rollback(session, "als")


def test_one_version_can_serve_a_named_strategy(session: Session, tmp_path: Path) -> None:
    v1 = registry.register_artifact(session, _artifact(tmp_path, "a"), version="als-1").version
    registry.activate(session, v1)
    registry.activate(session, v1, strategy="default")
    assert registry.active_versions(session) == {"als": v1, "default": v1}
    # Re-activating what already serves changes nothing.
    again = registry.activate(session, v1)
    assert again.previous_version is None


def test_pinned_strategy_refuses_changes_unless_forced(session: Session, tmp_path: Path) -> None:
    v1 = registry.register_artifact(session, _artifact(tmp_path, "a"), version="als-1").version
    v2 = registry.register_artifact(session, _artifact(tmp_path, "b"), version="als-2").version
    registry.activate(session, v1)
    registry.pin(session, "als")
    with pytest.raises(StrategyPinned):
        registry.activate(session, v2)
    registry.activate(session, v2, force=True)
    assert registry.active_versions(session) == {"als": v2}
    with pytest.raises(StrategyPinned):
        registry.rollback(session, "als")
    registry.pin(session, "als", pinned=False)
    registry.rollback(session, "als")
    assert registry.active_versions(session) == {"als": v1}


def test_retired_versions_cannot_serve(session: Session, tmp_path: Path) -> None:
    v1 = registry.register_artifact(session, _artifact(tmp_path, "a"), version="als-1").version
    v2 = registry.register_artifact(session, _artifact(tmp_path, "b"), version="als-2").version
    registry.activate(session, v1)
    with pytest.raises(VersionNotServable, match="still serves"):
        registry.retire(session, v1)
    registry.retire(session, v2)
    with pytest.raises(VersionNotServable, match="retired"):
        registry.activate(session, v2)


def test_unknown_names_raise_not_found(session: Session) -> None:
    with pytest.raises(VersionNotFound):
        registry.activate(session, "nope")
    with pytest.raises(StrategyNotFound):
        registry.rollback(session, "als")
    with pytest.raises(StrategyNotFound):
        registry.pin(session, "als")


def test_list_versions_newest_first_and_filtered(session: Session, tmp_path: Path) -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    new = datetime(2024, 2, 1, tzinfo=UTC)
    registry.register_artifact(session, _artifact(tmp_path, "a"), trained_at=old)
    registry.register_artifact(session, _artifact(tmp_path, "b"), trained_at=new)
    registry.register_artifact(session, _artifact(tmp_path, "c", algorithm="bpr"))
    als = registry.list_versions(session, algorithm="als")
    assert [v.trained_at for v in als] == [new, old]
    assert len(registry.list_versions(session)) == 3
