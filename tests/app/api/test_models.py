"""The model registry over the API: list, activate (verified first), roll back, pin."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.services import registry
from recommenders.artifacts import save_artifact
from recommenders.dataset import Dataset, DatasetConfig
from recommenders.popularity import PopularityRecommender
from tests.app.api.conftest import ADMIN


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    customers = pd.DataFrame({"customer_id": ["c1", "c2"], "segment": ["a", "b"]})
    products = pd.DataFrame(
        {"product_id": ["p1", "p2"], "category": ["deposit", "fund"], "risk_level": ["R1", "R2"]}
    )
    interactions = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "product_id": ["p1", "p2"],
            "event_type": ["hold", "view"],
            "occurred_at": ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"],
        }
    )
    return Dataset.from_frames(customers, products, interactions, DatasetConfig())


@pytest.fixture
def versions(
    dataset: Dataset, session_factory: sessionmaker[Session], tmp_path: Path
) -> dict[str, Path]:
    """Two registered popularity versions: ``old`` and ``new``, by artifact path."""
    found: dict[str, Path] = {}
    with session_factory() as session:
        for name, by_segment in (("old", False), ("new", True)):
            model = PopularityRecommender(by_segment=by_segment).fit(dataset)
            path = save_artifact(model, tmp_path / name, metrics={"ndcg@10": 0.1})
            row = registry.register_artifact(session, path, version=f"pop-{name}")
            found[row.version] = path
        session.commit()
    return found


def activate(client: TestClient, version: str, **body: object) -> dict[str, object]:
    response = client.post(f"/v1/models/{version}/activate", json=body or None, headers=ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_list_shows_versions_metrics_and_activations(
    client: TestClient, versions: dict[str, Path]
) -> None:
    activate(client, "pop-old")
    listing = client.get("/v1/models", headers=ADMIN).json()
    assert listing["count"] == 2
    by_version = {v["version"]: v for v in listing["data"]}
    assert by_version["pop-old"]["metrics"] == {"ndcg@10": 0.1}
    assert by_version["pop-old"]["serving"] == ["popularity"]
    assert by_version["pop-new"]["status"] == "registered"
    [strategy] = listing["activations"]
    assert (strategy["strategy"], strategy["version"]) == ("popularity", "pop-old")
    assert strategy["loaded_version"] == "pop-old"
    assert client.get("/v1/models/pop-new", headers=ADMIN).json()["algorithm"] == "popularity"


def test_activate_swaps_and_rollback_restores(
    client: TestClient, versions: dict[str, Path]
) -> None:
    activate(client, "pop-old")
    swapped = activate(client, "pop-new")
    assert (swapped["version"], swapped["previous_version"]) == ("pop-new", "pop-old")
    assert swapped["loaded_version"] == "pop-new"
    store = client.app.state.model_store  # type: ignore[attr-defined]
    assert store.get("popularity").version == "pop-new"

    back = client.post("/v1/strategies/popularity/rollback", headers=ADMIN)
    assert back.status_code == 200
    assert back.json()["loaded_version"] == "pop-old"
    again = client.post("/v1/strategies/popularity/rollback", headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/nothing-to-roll-back")


def test_tampered_artifact_is_refused_and_the_old_version_keeps_serving(
    client: TestClient, versions: dict[str, Path]
) -> None:
    activate(client, "pop-old")
    model_file = versions["pop-new"] / "model.npz"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")

    response = client.post("/v1/models/pop-new/activate", headers=ADMIN)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("/invalid-artifact")
    assert "model.npz" in problem["detail"]
    # The artifact is named, but not where this server keeps it on disk.
    assert str(versions["pop-new"].parent) not in problem["detail"]

    store = client.app.state.model_store  # type: ignore[attr-defined]
    assert store.get("popularity").version == "pop-old"
    [strategy] = client.get("/v1/models", headers=ADMIN).json()["activations"]
    assert strategy["version"] == "pop-old"


def test_pinned_strategy_refuses_activation_unless_forced(
    client: TestClient, versions: dict[str, Path]
) -> None:
    activate(client, "pop-old")
    pinned = client.put("/v1/strategies/popularity/pin", json={"pinned": True}, headers=ADMIN)
    assert pinned.json()["pinned"] is True
    refused = client.post("/v1/models/pop-new/activate", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/strategy-pinned")
    assert activate(client, "pop-new", force=True)["version"] == "pop-new"


def test_activation_under_another_strategy_name(
    client: TestClient, versions: dict[str, Path]
) -> None:
    result = activate(client, "pop-new", strategy="fallback_pop")
    assert result["strategy"] == "fallback_pop"
    assert client.app.state.model_store.get("fallback_pop").version == "pop-new"  # type: ignore[attr-defined]


def test_registry_routes_are_admin_only_and_name_unknowns(
    client: TestClient, versions: dict[str, Path]
) -> None:
    assert client.get("/v1/models").status_code == 403
    assert client.post("/v1/models/pop-old/activate").status_code == 403
    missing = client.post("/v1/models/nope/activate", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/model-version-not-found")
    unknown = client.put("/v1/strategies/nope/pin", json={"pinned": True}, headers=ADMIN)
    assert unknown.status_code == 404


def test_rollback_to_a_damaged_artifact_is_refused(
    client: TestClient, versions: dict[str, Path]
) -> None:
    activate(client, "pop-old")
    activate(client, "pop-new")
    (versions["pop-old"] / "manifest.json").write_text("{}", encoding="utf-8")

    response = client.post("/v1/strategies/popularity/rollback", headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-artifact")
    assert str(versions["pop-old"].parent) not in response.json()["detail"]
    [strategy] = client.get("/v1/models", headers=ADMIN).json()["activations"]
    assert (strategy["version"], strategy["loaded_version"]) == ("pop-new", "pop-new")
