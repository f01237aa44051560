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


class _Ids:
    def __init__(self, external: list[str]) -> None:
        self.external = np.asarray(external)


class _Model:
    def __init__(self, customers: list[str]) -> None:
        self.customer_ids = _Ids(customers)
        self.product_ids = _Ids(["P1"])


@pytest.mark.parametrize("customers", [["A1", "A3", "B", "C10"], ["C10", "A3", "B", "A1"]])
def test_customer_lookup_without_the_dict_answers_as_the_dict(customers: list[str]) -> None:
    from app.services.model_store import LoadedModel

    eager = LoadedModel.wrap("s", "v", _Model(customers))
    lazy = LoadedModel.wrap("s", "v", _Model(customers), index_customers=False)
    assert lazy._customer_index is None
    asked = ["A3", "A", "A30", "C10", "C100", "", "B", "A1", "zz", "A3"]
    expected = [eager.customer_position(c) for c in asked]
    assert expected[:4] == [customers.index("A3"), -1, -1, customers.index("C10")]
    assert lazy.customer_positions(asked).tolist() == expected
    assert lazy.customer_positions(np.asarray(asked, dtype=object)).tolist() == expected
    assert eager.customer_positions(asked).tolist() == expected
    assert [lazy.customer_position(c) for c in asked] == expected
    assert lazy._customer_index is None  # batch lookups never build the dict
    assert lazy.customer_positions([]).tolist() == []
    assert lazy.customer_positions(["zz", "zzz"]).tolist() == [-1, -1]  # past every ID
    assert lazy.customer_positions(["", "0"]).tolist() == [-1, -1]  # before every ID
    assert lazy.customer_index == eager.customer_index  # built on first use
    lazy.release_pages()  # nothing mapped: a no-op
