"""Model store: verified load, atomic swap, refusal of a tampered artifact, sync from the DB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.services.errors import InvalidArtifact
from app.services.model_store import ModelStore
from recommenders.artifacts import save_artifact
from tests.app.services.recommend import bank


@pytest.fixture(scope="module")
def model() -> object:
    return bank.fit_popularity()


def test_activate_loads_and_serves(model: object, tmp_path: Path) -> None:
    path = save_artifact(model, tmp_path / "pop")  # type: ignore[arg-type]
    store = ModelStore()
    loaded = store.activate("popularity", "v1", path)
    assert store.get("popularity") is loaded
    assert store.choose(None, "fusion") is loaded
    assert loaded.customer_position("C2") >= 0 and loaded.customer_position("nobody") == -1
    assert store.activate("popularity", "v1", path) is loaded  # same version: no reload
    positions = loaded.catalog_positions(1, {"P01": 0, "P05": 7})
    assert positions.shape == (len(bank.PRODUCTS),)
    assert sorted(positions[positions >= 0].tolist()) == [0, 7]


def test_tampered_artifact_is_refused_and_the_old_version_keeps_serving(
    model: object, tmp_path: Path
) -> None:
    good = save_artifact(model, tmp_path / "good")  # type: ignore[arg-type]
    bad = save_artifact(model, tmp_path / "bad")  # type: ignore[arg-type]
    with np.load(bad / "model.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays[next(iter(arrays))] = arrays[next(iter(arrays))] * 0 + 1
    np.savez(bad / "model.npz", **arrays)
    store = ModelStore()
    old = store.activate("popularity", "v1", good)
    with pytest.raises(InvalidArtifact, match="sha256"):
        store.activate("popularity", "v2", bad)
    assert store.get("popularity") is old
    with pytest.raises(InvalidArtifact):
        store.activate("popularity", "v3", tmp_path / "missing")


def test_sync_follows_the_registry(
    model: object, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    version = bank.publish(session_factory, model, tmp_path / "pop")
    store = ModelStore()
    assert store.sync(session_factory) == {}
    assert store.strategies == {"popularity": version}
