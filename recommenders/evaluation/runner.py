"""Fit every requested model on a split's training events and score it on the test pairs.

:func:`evaluate_models` is the entry point behind ``finrec evaluate``: import-contract frames
in, :class:`~recommenders.evaluation.report.Report` out. :func:`evaluate_dataset` does the same
for a :class:`~recommenders.dataset.Dataset` that is already built (benchmarks, notebooks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recommenders.base import Recommender
from recommenders.dataset import Dataset, DatasetConfig
from recommenders.evaluation.metrics import MapDenominator, evaluate_lists, self_information
from recommenders.evaluation.report import BASELINE, ModelResult, Report
from recommenders.evaluation.splits import Split, random_split, stratified_split, time_split

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
Progress = Callable[[str], None]


class SplitSpec(BaseModel):
    """How to split: ``time`` (cutoff or test fraction), ``random`` (per customer) or
    ``stratified`` (per product or customer, the MovieLens protocol)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["time", "random", "stratified"] = "time"
    cutoff: datetime | None = None  # time split; None = the test_fraction quantile of events
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42
    by: Literal["product", "customer"] = "product"  # stratified split groups

    def apply(self, dataset: Dataset) -> Split:
        """Split ``dataset``'s events with this protocol."""
        shape = (dataset.n_customers, dataset.n_products)
        takeup = dataset.config.takeup_event_types
        if self.kind == "time":
            return time_split(
                dataset.events,
                shape,
                cutoff=self.cutoff,
                test_fraction=self.test_fraction,
                takeup_event_types=takeup,
            )
        if self.kind == "random":
            return random_split(
                dataset.events,
                shape,
                test_fraction=self.test_fraction,
                seed=self.seed,
                takeup_event_types=takeup,
            )
        return stratified_split(
            dataset.events, shape, ratio=1 - self.test_fraction, seed=self.seed, by=self.by
        )


def evaluate_models(
    customers: pd.DataFrame,
    products: pd.DataFrame,
    interactions: pd.DataFrame,
    algorithms: Sequence[str],
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    split: SplitSpec | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    config: DatasetConfig | None = None,
    active_only: bool = True,
    progress: Progress | None = None,
) -> Report:
    """Evaluate ``algorithms`` (registry names) on import-contract frames.

    Builds the dataset, splits its events with ``split`` (default: time split, last 20% of
    events as test), fits each algorithm with ``params[name]`` on the training events, ranks
    products for every test customer with their already-taken products excluded, and scores
    the lists at each ``k``. Popularity is always evaluated as the baseline. ``active_only``
    limits lists to products whose status is ``active``. ``progress`` receives one line per
    step. Raises :class:`~recommenders.errors.UnknownAlgorithmError` for an unknown name and
    ``ValueError`` when the split leaves no test customers.
    """
    dataset = Dataset.from_frames(customers, products, interactions, config)
    return evaluate_dataset(
        dataset,
        algorithms,
        params=params,
        split=split,
        ks=ks,
        active_only=active_only,
        progress=progress,
    )


def evaluate_dataset(
    dataset: Dataset,
    algorithms: Sequence[str],
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    split: SplitSpec | Split | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    active_only: bool = True,
    map_denominator: MapDenominator = "relevant",
    progress: Progress | None = None,
) -> Report:
    """:func:`evaluate_models` for a built dataset; ``split`` may also be a ready :class:`Split`."""
    from recommenders.registry import get_algorithm

    say = progress or (lambda _line: None)
    names = [BASELINE, *(a for a in dict.fromkeys(algorithms) if a != BASELINE)]
    classes = {name: get_algorithm(name) for name in names}  # fail before any work
    ready = split if isinstance(split, Split) else (split or SplitSpec()).apply(dataset)
    customers = ready.test_customers
    if customers.size == 0:
        raise ValueError(f"the {ready.kind} split leaves no customer with a test product")
    say(
        f"split {ready.kind}: {len(ready.train)} training events, {customers.size} test "
        f"customers, {ready.test.nnz} test pairs"
    )
    train = dataset.with_events(ready.train)
    allowed = (dataset.product_status == "active") if active_only else None
    information = self_information(train.interactions)
    relevant = ready.test[customers]
    exclude = ready.exclude[customers]
    width = max(ks)
    results = []
    for name in names:
        say(f"fitting {name}")
        model: Recommender = classes[name](**dict((params or {}).get(name, {})))
        start = time.perf_counter()
        model.fit(train)
        fitted = time.perf_counter()
        indices, _ = model.recommend(customers, width, exclude=exclude, allowed=allowed)
        done = time.perf_counter()
        metrics = evaluate_lists(
            indices,
            relevant,
            ks,
            categories=dataset.product_category,
            information=information,
            map_denominator=map_denominator,
        )
        extra: dict[str, Any] = {}
        weights = getattr(model, "member_weights", None)
        if callable(weights):
            extra["member_weights"] = weights()
        results.append(
            ModelResult(
                name=name,
                algorithm=model.algorithm,
                params=model.params.model_dump(mode="json"),
                metrics=metrics,
                fit_seconds=fitted - start,
                recommend_seconds=done - fitted,
                extra=extra,
            )
        )
        at = 10 if 10 in ks else width
        say(f"{name}: nDCG@{at} {metrics[at]['ndcg']:.4f}")
    protocol = {
        **ready.describe(),
        "active_only": active_only,
        "map_denominator": map_denominator,
        "customers": dataset.n_customers,
        "products": dataset.n_products,
        "exclude": "products taken up before the split",
    }
    return Report(protocol=protocol, ks=sorted(set(ks)), results=results)


def recommended_lists(model: Recommender, split: Split, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` lists for a split's test customers with their training products excluded."""
    customers = split.test_customers
    return model.recommend(customers, k, exclude=split.exclude[customers])
