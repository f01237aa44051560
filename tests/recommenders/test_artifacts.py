"""Artifacts refuse anything corrupt, tampered with or incompatible, with a clear message."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from recommenders.artifacts import (
    FORMAT_VERSION,
    artifact_hash,
    load_artifact,
    read_manifest,
    save_artifact,
)
from recommenders.dataset import Dataset
from recommenders.errors import ArtifactError
from recommenders.implicit_models import ALSRecommender
from recommenders.popularity import PopularityRecommender


@pytest.fixture()
def artifact(tiny_dataset: Dataset, tmp_path: Path) -> Path:
    model = PopularityRecommender().fit(tiny_dataset)
    return model.save(tmp_path / "popularity", metrics={"ndcg@10": 0.25})


def rewrite_manifest(path: Path, rehash: bool, **changes: object) -> None:
    """Edit manifest fields; ``rehash`` recomputes its content hash (a deliberate forgery)."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(changes)
    if rehash:
        body = {k: v for k, v in manifest.items() if k != "content_sha256"}
        manifest["content_sha256"] = hashlib.sha256(
            json.dumps(body, sort_keys=True).encode()
        ).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_manifest_records_what_was_trained(artifact: Path, tiny_dataset: Dataset) -> None:
    manifest = read_manifest(artifact)
    assert manifest["algorithm"] == "popularity"
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["params"] == {"by_segment": True, "shrinkage": 10.0, "signal": "customers"}
    assert manifest["data"]["fingerprint"] == tiny_dataset.fingerprint
    assert manifest["data"]["window"][0].startswith("2024-01-01")
    assert manifest["metrics"] == {"ndcg@10": 0.25}
    assert {"numpy", "implicit", "python"} <= set(manifest["library_versions"])
    assert set(manifest["files"]) == {"ids.npz", "model.npz"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((artifact / name).read_bytes()).hexdigest() == digest
    assert artifact_hash(artifact) == manifest["content_sha256"]


def test_npz_files_load_without_pickle(artifact: Path) -> None:
    for name in ("ids.npz", "model.npz"):
        with np.load(artifact / name, allow_pickle=False) as data:
            assert data.files


@pytest.mark.parametrize("name", ["model.npz", "ids.npz"])
def test_a_flipped_byte_is_refused(artifact: Path, name: str) -> None:
    path = artifact / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"sha256 of {name} does not match"):
        PopularityRecommender.load(artifact)


def test_edited_manifest_is_refused(artifact: Path) -> None:
    rewrite_manifest(
        artifact,
        rehash=False,
        params={"by_segment": False, "shrinkage": 0.0, "signal": "customers"},
    )
    with pytest.raises(ArtifactError, match="content_sha256"):
        load_artifact(artifact)


def test_wrong_format_version_is_refused(artifact: Path) -> None:
    rewrite_manifest(artifact, rehash=True, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ArtifactError, match="format_version"):
        load_artifact(artifact)


def test_an_older_model_layout_is_refused_clearly(artifact: Path) -> None:
    """A model whose saved arrays changed layout refuses artifacts of the old layout."""
    rewrite_manifest(artifact, rehash=True, layout_version=PopularityRecommender.layout_version + 1)
    with pytest.raises(ArtifactError, match="reads layout version 1"):
        load_artifact(artifact)


def test_wrong_algorithm_is_refused(artifact: Path) -> None:
    with pytest.raises(ArtifactError, match="holds algorithm 'popularity', expected 'als'"):
        ALSRecommender.load(artifact)


def test_unknown_algorithm_is_refused(artifact: Path) -> None:
    rewrite_manifest(artifact, rehash=True, algorithm="deep-magic")
    with pytest.raises(ArtifactError, match="unknown algorithm 'deep-magic'"):
        load_artifact(artifact)


def test_params_the_model_does_not_know_are_refused(artifact: Path) -> None:
    rewrite_manifest(artifact, rehash=True, params={"by_segment": True, "mystery": 1})
    with pytest.raises(ArtifactError, match="incompatible"):
        load_artifact(artifact)


def test_missing_and_unlisted_files_are_refused(artifact: Path) -> None:
    (artifact / "extra.npz").write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"not in the manifest: extra\.npz"):
        load_artifact(artifact)
    (artifact / "extra.npz").unlink()
    (artifact / "model.npz").unlink()
    with pytest.raises(ArtifactError, match=r"model\.npz is missing"):
        load_artifact(artifact)


def test_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        load_artifact(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(tmp_path)


def test_existing_directory_is_not_overwritten_by_accident(
    artifact: Path, tiny_dataset: Dataset
) -> None:
    model = PopularityRecommender(by_segment=False).fit(tiny_dataset)
    with pytest.raises(ArtifactError, match="already exists"):
        model.save(artifact)
    model.save(artifact, overwrite=True)
    assert load_artifact(artifact).params == model.params


def test_failed_save_leaves_nothing_behind(tiny_dataset: Dataset, tmp_path: Path) -> None:
    model = PopularityRecommender().fit(tiny_dataset)
    model.table = np.array([object()] * 3, dtype=object)  # not storable without pickle
    with pytest.raises(ArtifactError, match="must not be objects"):
        save_artifact(model, tmp_path / "broken")
    assert list(tmp_path.iterdir()) == []
