"""Offline replay before launch: every arm ranks the same held-out window of the interaction log.

The log is split in time (:func:`recommenders.evaluation.splits.time_split`): each arm's model
is fitted on the events before the window and asked for a top-``k`` list for every customer who
takes up a product inside it, with products already taken up excluded and the policy gate's
suitability and status rules applied (:func:`recommenders.policy.allowed_mask`). The lists are
scored with the engine's metrics (:func:`recommenders.evaluation.metrics.accuracy_at_k`).

Because every arm ranks the same customers, the difference against control is paired: per
metric the mean of the per-customer differences with a 95% normal interval. The hit rate is the
offline stand-in for conversion (did the list contain a product the customer went on to take).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.db.models import ModelVersion
from app.jobs.training import build_model
from app.services.experiments.definitions import get_experiment, variants_of
from app.services.experiments.errors import InvalidExperiment
from recommenders.dataset import Dataset
from recommenders.evaluation.metrics import accuracy_at_k
from recommenders.evaluation.runner import SplitSpec
from recommenders.evaluation.splits import Split
from recommenders.policy import allowed_mask
from recommenders.registry import ALGORITHMS

METRICS = ("hit_rate", "precision", "recall", "ndcg")
Z95 = 1.959963984540054
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ArmSpec:
    """What an arm would serve, resolved to an algorithm and its parameters."""

    name: str
    role: str
    algorithm: str
    params: Mapping[str, Any]
    k: int


@dataclass
class ArmOutcome:
    name: str
    role: str
    algorithm: str
    k: int
    metrics: dict[str, float]
    difference: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Simulation:
    experiment: str
    protocol: dict[str, Any]
    arms: list[ArmOutcome]

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "protocol": self.protocol,
            "arms": [
                {
                    "variant": a.name,
                    "role": a.role,
                    "algorithm": a.algorithm,
                    "k": a.k,
                    "metrics": a.metrics,
                    "difference_vs_control": a.difference,
                }
                for a in self.arms
            ],
        }


def arm_specs(session: Session, key: str, default_k: int = 10) -> list[ArmSpec]:
    """The arms of experiment ``key`` as algorithms: a named model version's algorithm and
    parameters (the variant's ``params`` override them), else the strategy as an algorithm."""
    experiment = get_experiment(session, key)
    specs = []
    for variant in variants_of(session, experiment):
        params: dict[str, Any] = {}
        algorithm = variant.strategy
        if variant.model_version:
            row = session.get(ModelVersion, variant.model_version)
            if row is None:
                raise InvalidExperiment(
                    f"variant {variant.name!r} names unknown model version "
                    f"{variant.model_version!r}"
                )
            algorithm, params = row.algorithm, dict(row.params or {})
        params.update(variant.params or {})
        if algorithm not in ALGORITHMS:
            raise InvalidExperiment(
                f"variant {variant.name!r}: strategy {algorithm!r} is not an algorithm "
                f"({', '.join(sorted(ALGORITHMS))}); name a model_version to replay it"
            )
        specs.append(ArmSpec(variant.name, variant.role, algorithm, params, variant.k or default_k))
    return specs


def _paired(treatment: np.ndarray, control: np.ndarray) -> dict[str, float]:
    diff = treatment - control
    diff = diff[np.isfinite(diff)]
    n = diff.size
    mean = float(diff.mean()) if n else math.nan
    se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"difference": mean, "ci_low": mean - Z95 * se, "ci_high": mean + Z95 * se}


def simulate_dataset(
    key: str,
    dataset: Dataset,
    arms: Sequence[ArmSpec],
    *,
    cutoff: datetime | None = None,
    test_fraction: float = 0.2,
    progress: Progress | None = None,
) -> Simulation:
    """Replay the window after ``cutoff`` (default: the last ``test_fraction`` of events)."""
    say = progress or (lambda _line: None)
    split: Split = SplitSpec(kind="time", cutoff=cutoff, test_fraction=test_fraction).apply(dataset)
    customers = split.test_customers
    if customers.size == 0:
        raise InvalidExperiment("the replay window holds no take-up events; choose another cutoff")
    say(f"window: {customers.size} customers with {split.test.nnz} take-ups")
    train = dataset.with_events(split.train)
    allowed = allowed_mask(
        dataset.customer_risk_class[customers],
        dataset.product_risk_level,
        dataset.product_status == "active",
    )
    relevant = split.test[customers]
    exclude = split.exclude[customers]
    per_customer: dict[str, dict[str, np.ndarray]] = {}
    outcomes = []
    for arm in arms:
        say(f"fitting {arm.name} ({arm.algorithm})")
        model = build_model(arm.algorithm, arm.params).fit(train)
        indices, _ = model.recommend(customers, arm.k, exclude=exclude, allowed=allowed)
        scores = accuracy_at_k(indices, relevant, arm.k)
        per_customer[arm.name] = scores
        metrics = {m: float(np.nanmean(scores[m])) for m in METRICS}
        outcomes.append(ArmOutcome(arm.name, arm.role, arm.algorithm, arm.k, metrics))
    control = next(a for a in outcomes if a.role == "control")
    for outcome in outcomes:
        if outcome is not control:
            outcome.difference = {
                m: _paired(per_customer[outcome.name][m], per_customer[control.name][m])
                for m in METRICS
            }
    protocol = {**split.describe(), "policy": "active products within the risk class"}
    return Simulation(key, protocol, outcomes)
