"""The model registry: register, activate, roll back, pin, retire."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
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
from recommenders.artifacts import artifact_hash, save_artifact
from recommenders.dataset import Dataset, DatasetConfig
from recommenders.popularity import PopularityRecommender


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "segment": ["a", "a", "b"]})
    products = pd.DataFrame(
        {"product_id": ["p1", "p2"], "category": ["deposit", "fund"], "risk_level": ["R1", "R3"]}
    )
    interactions = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "product_id": ["p1", "p1", "p2"],
            "event_type": ["hold", "purchase", "view"],
            "occurred_at": ["2024-01-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-06-30T12:00:00Z"],
        }
    )
    return customers, products, interactions


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset.from_frames(*_frames(), DatasetConfig())


def _artifact(dataset: Dataset, root: Path, name: str, **params: object) -> Path:
    model = PopularityRecommender(**params).fit(dataset)
    return save_artifact(model, root / name, metrics={"ndcg@10": 0.3})


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


def test_register_records_manifest_and_hash(
    session: Session, dataset: Dataset, tmp_path: Path
) -> None:
    path = _artifact(dataset, tmp_path, "a")
    when = datetime(2024, 7, 1, 8, 30, 5, tzinfo=UTC)
    row = registry.register_artifact(session, path, trained_at=when, metrics={"recall@10": 0.5})
    session.commit()

    sha = artifact_hash(path)
    assert row.version == f"popularity-20240701T083005-{sha[:8]}"
    assert row.artifact_sha256 == sha
    assert row.algorithm == "popularity"
    assert row.status == "registered"
    assert row.params["by_segment"] is True
    assert row.metrics == {"ndcg@10": 0.3, "recall@10": 0.5}
    assert row.data_window_start == datetime(2024, 1, 1, tzinfo=UTC)
    assert row.data_window_end == datetime(2024, 6, 30, 12, tzinfo=UTC)
    assert row.data_fingerprint == dataset.fingerprint
    assert Path(row.artifact_path) == path.resolve()

    again = registry.get_version(session, row.version)
    assert again.trained_at == when


def test_register_twice_and_bad_artifacts_are_refused(
    session: Session, dataset: Dataset, tmp_path: Path
) -> None:
    path = _artifact(dataset, tmp_path, "a")
    registry.register_artifact(session, path, version="v1")
    with pytest.raises(VersionExists):
        registry.register_artifact(session, path, version="v1")
    with pytest.raises(InvalidArtifact, match="missing"):
        registry.register_artifact(session, tmp_path / "missing")
    tampered = _artifact(dataset, tmp_path, "tampered")
    (tampered / "model.npz").write_bytes(b"not the model")
    with pytest.raises(InvalidArtifact, match="tampered"):
        registry.register_artifact(session, tampered)
    assert [v.version for v in registry.list_versions(session)] == ["v1"]


def test_activate_rollback_and_status(session: Session, dataset: Dataset, tmp_path: Path) -> None:
    v1 = registry.register_artifact(
        session, _artifact(dataset, tmp_path, "a"), version="pop-1"
    ).version
    v2 = registry.register_artifact(
        session, _artifact(dataset, tmp_path, "b"), version="pop-2"
    ).version

    registry.activate(session, v1, actor="ops")
    assert registry.active_versions(session) == {"popularity": v1}
    registry.activate(session, v2)
    session.commit()
    activation = registry.get_activation(session, "popularity")
    assert (activation.version, activation.previous_version) == (v2, v1)
    assert registry.get_version(session, v2).status == "active"
    assert registry.get_version(session, v1).status == "registered"

    registry.rollback(session, "popularity", actor="ops")
    session.commit()
    assert registry.active_versions(session) == {"popularity": v1}
    assert registry.get_version(session, v1).status == "active"
    assert registry.get_version(session, v2).status == "registered"
    with pytest.raises(NothingToRollBack):
        registry.rollback(session, "popularity")


def test_one_version_can_serve_a_named_strategy(
    session: Session, dataset: Dataset, tmp_path: Path
) -> None:
    v1 = registry.register_artifact(
        session, _artifact(dataset, tmp_path, "a"), version="pop-1"
    ).version
    registry.activate(session, v1)
    registry.activate(session, v1, strategy="default")
    assert registry.active_versions(session) == {"popularity": v1, "default": v1}
    # Re-activating what already serves changes nothing.
    again = registry.activate(session, v1)
    assert again.previous_version is None


def test_pinned_strategy_refuses_changes_unless_forced(
    session: Session, dataset: Dataset, tmp_path: Path
) -> None:
    v1 = registry.register_artifact(
        session, _artifact(dataset, tmp_path, "a"), version="pop-1"
    ).version
    v2 = registry.register_artifact(
        session, _artifact(dataset, tmp_path, "b"), version="pop-2"
    ).version
    registry.activate(session, v1)
    registry.pin(session, "popularity")
    with pytest.raises(StrategyPinned):
        registry.activate(session, v2)
    registry.activate(session, v2, force=True)
    assert registry.active_versions(session) == {"popularity": v2}
    with pytest.raises(StrategyPinned):
        registry.rollback(session, "popularity")
    registry.pin(session, "popularity", pinned=False)
    registry.rollback(session, "popularity")
    assert registry.active_versions(session) == {"popularity": v1}


def test_retired_versions_cannot_serve(session: Session, dataset: Dataset, tmp_path: Path) -> None:
    v1 = registry.register_artifact(
        session, _artifact(dataset, tmp_path, "a"), version="pop-1"
    ).version
    v2 = registry.register_artifact(
        session, _artifact(dataset, tmp_path, "b"), version="pop-2"
    ).version
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
        registry.rollback(session, "popularity")
    with pytest.raises(StrategyNotFound):
        registry.pin(session, "popularity")


def test_list_versions_newest_first_and_filtered(
    session: Session, dataset: Dataset, tmp_path: Path
) -> None:
    times = [datetime(2024, m, 1, tzinfo=UTC) for m in (2, 1, 3)]
    for name, when in zip("abc", times, strict=True):
        registry.register_artifact(session, _artifact(dataset, tmp_path, name), trained_at=when)
    listed = registry.list_versions(session, algorithm="popularity")
    assert [v.trained_at for v in listed] == sorted(times, reverse=True)
    assert registry.list_versions(session, algorithm="als") == []
