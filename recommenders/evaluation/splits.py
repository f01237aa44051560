"""Train/test splits over an events frame, by integer index.

Every split works on the layout of :attr:`recommenders.dataset.Dataset.events` (columns
``customer`` and ``product`` as integer indices, ``event_type``, ``occurred_at`` in UTC) and
returns a :class:`Split`: the training events (feed them to ``Dataset.with_events``), the test
relevance matrix and the pairs to exclude from recommendations. Splits are pure functions of
their inputs and seed, so a rerun gives the same split.

Three protocols:

* :func:`time_split` — the bank's real question: train on everything up to a cutoff ``T``, then
  ask which products each customer *newly* takes up (apply/purchase/hold) after ``T``.
* :func:`random_split` — per customer, a random fraction of the products they took up is held
  out (all events of a held-out pair leave the training data, so a view cannot leak the answer).
* :func:`stratified_split` — groups events by product (or customer) and sends a random share of
  each group's events to test: the MovieLens benchmark protocol.

:func:`validation_split` carves a validation split out of a split's training events with the
same protocol, so tuning never looks at the test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

TAKEUP_EVENT_TYPES: tuple[str, ...] = ("apply", "purchase", "hold")

SplitKind = Literal["time", "random", "stratified"]


@dataclass(frozen=True, eq=False)
class Split:
    """One train/test split.

    ``train`` keeps the events layout. ``test`` is a customers x products matrix holding 1.0
    for each relevant (customer, product) pair. ``exclude`` holds the pairs a recommendation
    list must not contain at test time (products the customer already took up in ``train``).
    ``params`` records how the split was made so a report can print the exact protocol.
    """

    kind: SplitKind
    train: pd.DataFrame
    test: sp.csr_matrix
    exclude: sp.csr_matrix
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.test.shape[0]), int(self.test.shape[1]))

    @property
    def test_customers(self) -> np.ndarray:
        """Customers with at least one relevant test product (int32, ascending)."""
        return np.flatnonzero(np.diff(self.test.indptr) > 0).astype(np.int32)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: protocol parameters and sizes."""
        return {
            "kind": self.kind,
            **{
                k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.params.items()
            },
            "train_events": len(self.train),
            "test_customers": len(self.test_customers),
            "test_pairs": int(self.test.nnz),
        }


def _pairs_matrix(
    customers: np.ndarray, products: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """A binary matrix with 1.0 at each (customer, product) pair (duplicates collapse)."""
    matrix = sp.csr_matrix(
        (
            np.ones(len(customers), dtype=np.float32),
            (np.asarray(customers, dtype=np.int64), np.asarray(products, dtype=np.int64)),
        ),
        shape=shape,
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


def _pair_keys(events: pd.DataFrame, n_products: int) -> np.ndarray:
    customers: np.ndarray = events["customer"].to_numpy(dtype=np.int64)
    products: np.ndarray = events["product"].to_numpy(dtype=np.int64)
    keys: np.ndarray = customers * n_products + products
    return keys


def _takeup_exclusions(
    train: pd.DataFrame, shape: tuple[int, int], takeup: Sequence[str]
) -> sp.csr_matrix:
    taken = train[train["event_type"].astype(str).isin(list(takeup))]
    return _pairs_matrix(taken["customer"].to_numpy(), taken["product"].to_numpy(), shape)


def _as_utc(value: datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def time_split(
    events: pd.DataFrame,
    shape: tuple[int, int],
    *,
    cutoff: datetime | pd.Timestamp | None = None,
    test_fraction: float = 0.2,
    takeup_event_types: Sequence[str] = TAKEUP_EVENT_TYPES,
) -> Split:
    """Train on events at or before ``cutoff``; test on products newly taken up after it.

    A test pair is a (customer, product) with a take-up event after the cutoff and no take-up
    event at or before it: products the customer already had are not a prediction target and
    are excluded from the lists. Without ``cutoff``, it is the event time below which
    ``1 - test_fraction`` of the events fall.
    """
    if cutoff is None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        if events.empty:
            raise ValueError("cannot choose a time cutoff for an empty events frame")
        times = events["occurred_at"].sort_values(ignore_index=True)
        cut = pd.Timestamp(times.iloc[int(np.floor((len(times) - 1) * (1.0 - test_fraction)))])
    else:
        cut = _as_utc(cutoff)
    before = (events["occurred_at"] <= cut).to_numpy()
    train = events[before].reset_index(drop=True)
    exclude = _takeup_exclusions(train, shape, takeup_event_types)

    later = events[~before]
    later = later[later["event_type"].astype(str).isin(list(takeup_event_types))]
    taken_before = train[train["event_type"].astype(str).isin(list(takeup_event_types))]
    later = later[~np.isin(_pair_keys(later, shape[1]), _pair_keys(taken_before, shape[1]))]
    test = _pairs_matrix(later["customer"].to_numpy(), later["product"].to_numpy(), shape)
    return Split(
        "time",
        train,
        test,
        exclude,
        {"cutoff": cut.to_pydatetime(), "takeup_event_types": list(takeup_event_types)},
    )


def random_split(
    events: pd.DataFrame,
    shape: tuple[int, int],
    *,
    test_fraction: float = 0.2,
    seed: int = 42,
    takeup_event_types: Sequence[str] = TAKEUP_EVENT_TYPES,
) -> Split:
    """Per customer, hold out a random ``test_fraction`` of the products they took up.

    Each customer with at least two taken-up products keeps at least one in training and sends
    ``round(test_fraction * n)`` (at least one) to test. Every event of a held-out pair, views
    included, leaves the training data.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    taken = events[events["event_type"].astype(str).isin(list(takeup_event_types))]
    pairs = (
        taken[["customer", "product"]]
        .drop_duplicates()
        .sort_values(["customer", "product"], ignore_index=True)
    )
    rng = np.random.default_rng(seed)
    pairs["_r"] = rng.random(len(pairs))
    pairs = pairs.sort_values(["customer", "_r"], ignore_index=True)
    rank = pairs.groupby("customer").cumcount().to_numpy()
    size = pairs.groupby("customer")["product"].transform("size").to_numpy()
    n_test = np.where(size >= 2, np.clip(np.round(test_fraction * size), 1, size - 1), 0)
    held = pairs[rank < n_test]
    test = _pairs_matrix(held["customer"].to_numpy(), held["product"].to_numpy(), shape)
    held_keys = _pair_keys(held, shape[1])
    train = events[~np.isin(_pair_keys(events, shape[1]), held_keys)].reset_index(drop=True)
    exclude = _takeup_exclusions(train, shape, takeup_event_types)
    return Split(
        "random",
        train,
        test,
        exclude,
        {
            "test_fraction": test_fraction,
            "seed": seed,
            "takeup_event_types": list(takeup_event_types),
        },
    )


def stratified_split(
    events: pd.DataFrame,
    shape: tuple[int, int],
    *,
    ratio: float = 0.75,
    seed: int = 42,
    by: Literal["product", "customer"] = "product",
) -> Split:
    """Within each ``by`` group, a random ``ratio`` of the events trains and the rest tests.

    Each group's events are shuffled with ``seed`` and the first ``round(ratio * n)`` go to
    training (so a group with one event trains only). Every test event counts as relevant; the
    lists exclude every training pair. This is the MovieLens benchmark protocol with
    ``by="product"``, ``ratio=0.75``, ``seed=42``.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    frame = events.reset_index(drop=True)
    # Order first by a stable key so the split does not depend on the input row order.
    order = np.lexsort(
        (frame["occurred_at"].to_numpy(), frame["product"].to_numpy(), frame["customer"].to_numpy())
    )
    frame = frame.iloc[order].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    frame["_r"] = rng.random(len(frame))
    shuffled = frame.sort_values([by, "_r"], kind="stable")
    rank = shuffled.groupby(by).cumcount().to_numpy()
    size = shuffled.groupby(by)[by].transform("size").to_numpy()
    is_train = pd.Series(rank < np.round(ratio * size), index=shuffled.index).sort_index()
    mask = is_train.to_numpy()
    train = frame[mask].drop(columns="_r").reset_index(drop=True)
    held = frame[~mask]
    test = _pairs_matrix(held["customer"].to_numpy(), held["product"].to_numpy(), shape)
    exclude = _pairs_matrix(train["customer"].to_numpy(), train["product"].to_numpy(), shape)
    # A pair present on both sides (repeat events) is not a prediction target.
    test = (test - test.multiply(exclude)).tocsr()
    test.eliminate_zeros()
    return Split("stratified", train, test, exclude, {"ratio": ratio, "seed": seed, "by": by})


def validation_split(split: Split, *, fraction: float | None = None, seed: int = 7) -> Split:
    """A split of ``split.train`` made with the same protocol, for tuning.

    The time protocol takes a cutoff inside the training window; random and stratified
    protocols hold out ``fraction`` of the training data (default: the test share of the
    outer split). The outer test set is never read.
    """
    shape = split.shape
    params = split.params
    if split.kind == "time":
        return time_split(
            split.train,
            shape,
            test_fraction=fraction or 0.2,
            takeup_event_types=params["takeup_event_types"],
        )
    if split.kind == "random":
        return random_split(
            split.train,
            shape,
            test_fraction=fraction or params["test_fraction"],
            seed=seed,
            takeup_event_types=params["takeup_event_types"],
        )
    ratio = 1.0 - fraction if fraction is not None else params["ratio"]
    return stratified_split(split.train, shape, ratio=ratio, seed=seed, by=params["by"])
