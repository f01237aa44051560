"""Compact memory of keys seen in earlier chunks: exact first rows, and hash ties handled."""

from __future__ import annotations

import numpy as np
import pytest

from app.jobs.importer import seen
from app.jobs.importer.seen import SeenKeys


def _keys(*names: str) -> np.ndarray:
    return np.array(names, dtype=object)


def test_first_rows_across_several_additions() -> None:
    keys = SeenKeys()
    keys.add(_keys("a", "b", "c"), np.array([1, 2, 3]))
    keys.add(_keys("z", "m"), np.array([10, 11]))
    assert keys.first_rows(_keys("m", "x", "a", "c", "z", "b")).tolist() == [11, 0, 1, 3, 10, 2]
    assert len(keys) == 5


def test_nothing_added_finds_nothing() -> None:
    assert SeenKeys().first_rows(_keys("a", "b")).tolist() == [0, 0]


def test_keys_sharing_the_first_hash_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force every key onto the same first hash: only the second one separates them.
    real = seen._fingerprints

    def tied(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, low = real(values)
        return np.zeros(len(values), dtype=np.uint64), low

    monkeypatch.setattr(seen, "_fingerprints", tied)
    keys = SeenKeys()
    keys.add(_keys("a", "b"), np.array([4, 5]))
    keys.add(_keys("c"), np.array([9]))
    assert keys.first_rows(_keys("c", "d", "a", "b")).tolist() == [9, 0, 4, 5]


def test_many_keys_in_random_chunks_match_a_dict() -> None:
    rng = np.random.default_rng(5)
    names = np.array([f"k{i}" for i in rng.integers(0, 3_000, 10_000)], dtype=object)
    keys = SeenKeys()
    expected: dict[str, int] = {}
    for start in range(0, len(names), 997):
        chunk = names[start : start + 997]
        rows = np.arange(start + 1, start + len(chunk) + 1)
        want = [expected.get(k, 0) for k in chunk]
        assert keys.first_rows(chunk).tolist() == want
        fresh = {}
        for k, r in zip(chunk.tolist(), rows.tolist(), strict=True):
            if k not in expected:
                fresh.setdefault(k, r)
        keys.add(np.array(list(fresh), dtype=object), np.array(list(fresh.values())))
        expected.update(fresh)
    assert len(keys) == len(expected)
