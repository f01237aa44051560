"""Memory-mapped loading: the same model as a full load, from the same verified files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from recommenders.artifacts import load_artifact, release_pages, sorted_order
from recommenders.dataset import Dataset
from recommenders.errors import ArtifactError
from recommenders.implicit_models import ALSRecommender

MAPPED = ("customer_ids", "customer_factors", "customer_bias")


@pytest.fixture()
def als(tiny_dataset: Dataset, tmp_path: Path) -> Path:
    model = ALSRecommender(factors=4, iterations=2, random_state=1).fit(tiny_dataset)
    return model.save(tmp_path / "als")


def test_mapped_load_reads_the_same_arrays(als: Path) -> None:
    full = load_artifact(als)
    mapped = load_artifact(als, mmap=MAPPED)
    assert isinstance(mapped.customer_factors, np.memmap)  # type: ignore[attr-defined]
    assert isinstance(mapped.customer_ids.external, np.memmap)  # type: ignore[union-attr]
    assert not isinstance(mapped.product_factors, np.memmap)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(mapped.customer_factors, full.customer_factors)  # type: ignore[attr-defined]
    assert mapped.customer_ids == full.customer_ids
    rows = np.asarray([0, 2, 1])
    np.testing.assert_array_equal(mapped.score(rows), full.score(rows))
    # The lazily built index answers like the eager one.
    some = full.customer_ids.external[:3].tolist()  # type: ignore[union-attr]
    assert mapped.customer_ids.to_index([*some, "nobody"]).tolist() == [0, 1, 2, -1]  # type: ignore[union-attr]
    release_pages(mapped.customer_factors)  # type: ignore[attr-defined]
    release_pages(np.asarray(mapped.customer_factors)[1:])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(mapped.customer_factors, full.customer_factors)  # type: ignore[attr-defined]


def test_mapped_load_still_verifies_hashes(als: Path) -> None:
    with np.load(als / "model.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["customer_factors"] = arrays["customer_factors"] + 1
    np.savez(als / "model.npz", **arrays)
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(als, mmap=MAPPED)


def _rehash(path: Path, name: str) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    body = {k: v for k, v in manifest.items() if k != "content_sha256"}
    manifest["content_sha256"] = hashlib.sha256(
        json.dumps(body, sort_keys=True).encode()
    ).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_compressed_members_are_read_instead_of_mapped(als: Path) -> None:
    full = load_artifact(als)
    with np.load(als / "model.npz") as data:
        arrays = {k: data[k] for k in data.files}
    np.savez_compressed(als / "model.npz", **arrays)
    _rehash(als, "model.npz")
    mapped = load_artifact(als, mmap=MAPPED)
    assert not isinstance(mapped.customer_factors, np.memmap)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(mapped.customer_factors, full.customer_factors)  # type: ignore[attr-defined]


def test_mapped_ids_with_duplicates_are_refused(als: Path) -> None:
    with np.load(als / "ids.npz") as data:
        ids = {k: data[k] for k in data.files}
    ids["customer_ids"] = ids["customer_ids"].copy()
    ids["customer_ids"][1] = ids["customer_ids"][0]
    np.savez(als / "ids.npz", **ids)
    _rehash(als, "ids.npz")
    with pytest.raises(ArtifactError, match="duplicate"):
        load_artifact(als, mmap=MAPPED)
    with pytest.raises(ArtifactError, match="duplicate"):
        load_artifact(als)


def test_sorted_order() -> None:
    assert sorted_order(np.asarray(["a", "b", "c"])) is None
    assert sorted_order(np.asarray(["b", "a", "c"])).tolist() == [1, 0, 2]  # type: ignore[union-attr]
    assert sorted_order(np.asarray([], dtype="<U1")) is None
    with pytest.raises(ArtifactError, match="duplicate IDs: b"):
        sorted_order(np.asarray(["b", "a", "b"]))


def test_sorted_order_sees_across_its_slices() -> None:
    ids = np.asarray([f"C{i:06d}" for i in range(70_000)])
    assert sorted_order(ids) is None
    swapped = ids.copy()
    swapped[[65_535, 65_536]] = swapped[[65_536, 65_535]]  # the two sides of a slice boundary
    order = sorted_order(swapped)
    assert order is not None
    assert order[65_535] == 65_536 and order[65_536] == 65_535
    twice = ids.copy()
    twice[65_536] = twice[65_535]
    with pytest.raises(ArtifactError, match="C065535"):
        sorted_order(twice)
