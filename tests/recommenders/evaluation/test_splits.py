"""Splits: leak-free, deterministic, and matching their stated protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommenders.evaluation.splits import (
    random_split,
    stratified_split,
    time_split,
    validation_split,
)


def _events(rows: list[tuple[int, int, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer", "product", "event_type", "occurred_at"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    return frame


EVENTS = _events(
    [
        (0, 0, "purchase", "2024-01-01"),
        (0, 1, "view", "2024-01-02"),
        (0, 1, "purchase", "2024-03-01"),  # new take-up after the cutoff
        (0, 0, "hold", "2024-03-02"),  # already had it: not a target
        (1, 2, "apply", "2024-01-05"),
        (1, 3, "click", "2024-03-03"),  # not a take-up: not a target
        (2, 3, "hold", "2024-03-04"),  # customer with nothing before the cutoff
    ]
)


def _pairs(matrix: object) -> set[tuple[int, int]]:
    coo = matrix.tocoo()  # type: ignore[attr-defined]
    return set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


def test_time_split_targets_only_new_takeups_after_the_cutoff() -> None:
    split = time_split(EVENTS, (3, 4), cutoff=pd.Timestamp("2024-02-01"))
    assert _pairs(split.test) == {(0, 1), (2, 3)}
    assert (split.train["occurred_at"] <= pd.Timestamp("2024-02-01", tz="UTC")).all()
    assert len(split.train) == 3
    assert _pairs(split.exclude) == {(0, 0), (1, 2)}
    assert split.test_customers.tolist() == [0, 2]
    assert split.describe()["test_pairs"] == 2


def test_time_split_default_cutoff_uses_the_test_fraction() -> None:
    split = time_split(EVENTS, (3, 4), test_fraction=0.5)
    assert split.params["cutoff"] == pd.Timestamp("2024-03-01", tz="UTC")
    assert len(split.train) == 4


def _many_events(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 600
    frame = pd.DataFrame(
        {
            "customer": rng.integers(0, 40, n),
            "product": rng.integers(0, 25, n),
            "event_type": rng.choice(["view", "purchase", "apply"], n),
            "occurred_at": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10_000, n), unit="min"),
        }
    )
    return frame


def test_random_split_is_leak_free_and_deterministic() -> None:
    events = _many_events()
    a = random_split(events, (40, 25), test_fraction=0.25, seed=3)
    b = random_split(events.sample(frac=1.0, random_state=1), (40, 25), test_fraction=0.25, seed=3)
    assert _pairs(a.test) == _pairs(b.test)
    train_pairs = set(zip(a.train["customer"], a.train["product"], strict=True))
    assert not train_pairs & _pairs(a.test)  # no event of a held-out pair stays in training
    assert not _pairs(a.exclude) & _pairs(a.test)
    # Every customer keeps at least one take-up in training.
    taken = a.train[a.train["event_type"] != "view"]
    assert set(a.test_customers.tolist()) <= set(taken["customer"].tolist())
    c = random_split(events, (40, 25), test_fraction=0.25, seed=4)
    assert _pairs(a.test) != _pairs(c.test)


def test_stratified_split_holds_out_a_quarter_of_each_products_events() -> None:
    events = _many_events().drop_duplicates(["customer", "product"])
    split = stratified_split(events, (40, 25), ratio=0.75, seed=42, by="product")
    train_counts = split.train.groupby("product").size()
    total = events.groupby("product").size()
    assert (train_counts == np.round(0.75 * total)).all()
    assert len(split.train) + split.test.nnz == len(events)
    assert not _pairs(split.exclude) & _pairs(split.test)
    again = stratified_split(events.iloc[::-1], (40, 25), ratio=0.75, seed=42, by="product")
    assert _pairs(again.test) == _pairs(split.test)


def test_validation_split_never_reads_the_test_set() -> None:
    events = _many_events()
    for outer in (
        time_split(events, (40, 25)),
        random_split(events, (40, 25)),
        stratified_split(events, (40, 25)),
    ):
        inner = validation_split(outer)
        assert inner.kind == outer.kind
        outer_train = set(zip(outer.train["customer"], outer.train["product"], strict=True))
        assert _pairs(inner.test) <= outer_train
        assert not _pairs(inner.test) & _pairs(outer.test) - outer_train
        assert len(inner.train) < len(outer.train)


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        random_split(EVENTS, (3, 4), test_fraction=1.5)
    with pytest.raises(ValueError, match="ratio"):
        stratified_split(EVENTS, (3, 4), ratio=0.0)
