"""Multi-model fusion: a composition of member recommenders blended into one ranking.

Each member scores the catalogue; its scores are normalised per customer (min-max, z-score or
percentile rank, or reciprocal rank for ``method="rrf"``) and blended as a weighted average over
the members that can *serve* each (customer, product) pair:

* a member serves a customer when it can score them at all (unseen customers go only to members
  whose ``score_cold`` works; ``ColdStartUnsupported`` members are skipped) and its scores for
  them are not flat (a customer without history gets a constant row from a factor model);
* a member serves a product when the product had interactions at fit time, or when the member
  scores products from their attributes (content, LightFM), so new products are ranked by the
  members that can judge them instead of being pushed down by those that cannot.

Weights are tuned on a validation split carved from the training events unless fixed in the
params: coordinate search on nDCG@k (plus ``coverage_weight`` x catalogue coverage@k) starting
from the best single member, accepting only blends whose coverage is at least that member's
(``keep_coverage``), so on validation the blend is never worse than its best member on either.
Every recommended item records how much each member contributed
(:meth:`FusionRecommender.recommend_explained`), so reasons can say why.

The artifact holds the blend (weights, member names) plus each member's own artifact under
``members/<name>/``; every file is hashed by the fusion manifest and members verify their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from recommenders.base import DEFAULT_CHUNK, Arrays, ColdInput, ModelParams, Recommender
from recommenders.dataset import Dataset
from recommenders.errors import ColdStartUnsupported
from recommenders.evaluation.metrics import accuracy_at_k, catalogue_coverage
from recommenders.evaluation.splits import Split, random_split, stratified_split, time_split
from recommenders.evaluation.tuning import coordinate_search
from recommenders.ranking import apply_allowed, apply_exclusions, top_k

DEFAULT_MEMBERS: tuple[str, ...] = ("popularity", "als", "itemknn", "ease", "content")
# Members that score a product from its attributes, so they can rank products nobody has taken.
FEATURE_BASED: frozenset[str] = frozenset({"content", "lightfm"})
# Fused score of a product no member can serve: below every served product, still finite so
# lists can be filled when a policy leaves too few products.
UNSERVED = np.float32(-1e3)
_FLAT = 1e-9


class FusionParams(ModelParams):
    members: list[str] = Field(default_factory=lambda: list(DEFAULT_MEMBERS), min_length=1)
    # Hyper-parameters per member, by algorithm name (members not named use their defaults).
    member_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    method: Literal["weighted", "rrf"] = "weighted"
    normalisation: Literal["minmax", "zscore", "rank"] = "minmax"
    rrf_k: float = Field(default=60.0, gt=0)
    # Fixed weights by member name; None tunes them on a validation split.
    weights: dict[str, float] | None = None
    validation: Literal["time", "random", "stratified"] = "time"
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    tune_k: int = Field(default=10, ge=1)
    grid: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
    rounds: int = Field(default=3, ge=0)
    max_validation_customers: int = Field(default=20_000, ge=1)
    # Accept only blends whose validation coverage@tune_k is at least the best member's.
    keep_coverage: bool = True
    # Tuning maximises nDCG@tune_k + coverage_weight * coverage@tune_k (both in [0, 1]).
    coverage_weight: float = Field(default=0.1, ge=0.0)
    seed: int = 42

    @model_validator(mode="after")
    def _check_names(self) -> FusionParams:
        if len(set(self.members)) != len(self.members):
            raise ValueError("fusion members must be distinct algorithms")
        if "fusion" in self.members:
            raise ValueError("fusion cannot be its own member")
        for source in (self.member_params, self.weights or {}):
            unknown = sorted(set(source) - set(self.members))
            if unknown:
                raise ValueError(f"not a fusion member: {', '.join(unknown)}")
        return self


@dataclass(frozen=True)
class Explained:
    """Ranked lists with each member's share of every item's fused score.

    ``contributions[i, j, m]`` is member ``members[m]``'s part of ``scores[i, j]``; the parts
    of a served item add up to its score (0 where the member could not serve it).
    """

    indices: np.ndarray  # int32 [n, k], -1 padding
    scores: np.ndarray  # float32 [n, k]
    contributions: np.ndarray  # float32 [n, k, n_members]
    members: tuple[str, ...]


@dataclass(frozen=True)
class _Block:
    """One member's normalised scores for a block of customers, and where they count."""

    values: np.ndarray  # float32 [n, p]
    rows: np.ndarray  # bool [n]: member serves this customer
    items: np.ndarray  # bool [p]: member serves this product


class FusionRecommender(Recommender):
    """Blends member models; see the module docstring for routing, tuning and explanations."""

    algorithm: ClassVar[str] = "fusion"
    params_model: ClassVar[type[ModelParams]] = FusionParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"history", "features"})
    params: FusionParams

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.members: dict[str, Recommender] = {}
        self.weights = np.zeros(0, dtype=np.float32)
        self.warm_product = np.zeros(0, dtype=bool)
        self.validation_ndcg = float("nan")
        self.validation_coverage = float("nan")

    @classmethod
    def build_for_contract(cls, dataset: Dataset) -> Recommender:
        from recommenders.registry import ALGORITHMS

        members = [m for m in DEFAULT_MEMBERS if m in ALGORITHMS]
        return cls(members=members, rounds=1)

    @property
    def member_names(self) -> tuple[str, ...]:
        return tuple(self.params.members)

    def member_weights(self) -> dict[str, float]:
        """The blend weights in use, by member name."""
        return {n: float(w) for n, w in zip(self.member_names, self.weights, strict=True)}

    # ---- fitting ---------------------------------------------------------------------------
    def _new_members(self) -> dict[str, Recommender]:
        from recommenders.registry import get_algorithm

        return {
            name: get_algorithm(name)(**self.params.member_params.get(name, {}))
            for name in self.member_names
        }

    def _fit(self, dataset: Dataset) -> None:
        fixed = self.params.weights
        if fixed is not None:
            weights = np.asarray([fixed.get(n, 0.0) for n in self.member_names], dtype=np.float64)
        elif len(self.member_names) == 1:
            weights = np.ones(1)
        else:
            weights = self._tune(dataset)
        if not np.any(weights > 0):
            raise ValueError("fusion needs at least one member with a positive weight")
        # A member weighted zero never contributes: not training it saves a full fit.
        self.members = {
            name: member.fit(dataset)
            for (name, member), weight in zip(self._new_members().items(), weights, strict=True)
            if weight > 0
        }
        self.weights = weights.astype(np.float32)
        self.warm_product = np.diff(dataset.interactions.tocsc().indptr) > 0

    def _validation_split(self, dataset: Dataset) -> Split:
        shape = (dataset.n_customers, dataset.n_products)
        frac, seed = self.params.validation_fraction, self.params.seed
        if self.params.validation == "time":
            split = time_split(
                dataset.events,
                shape,
                test_fraction=frac,
                takeup_event_types=dataset.config.takeup_event_types,
            )
            if len(split.test_customers):
                return split
        if self.params.validation == "stratified":
            return stratified_split(dataset.events, shape, ratio=1 - frac, seed=seed)
        return random_split(
            dataset.events,
            shape,
            test_fraction=frac,
            seed=seed,
            takeup_event_types=dataset.config.takeup_event_types,
        )

    def _tune(self, dataset: Dataset) -> np.ndarray:
        """Weights maximising nDCG@tune_k on a validation split of ``dataset``'s events."""
        n_members = len(self.member_names)
        equal = np.ones(n_members)
        split = self._validation_split(dataset)
        customers = split.test_customers
        if customers.size == 0:
            return equal
        if customers.size > self.params.max_validation_customers:
            rng = np.random.default_rng(self.params.seed)
            customers = np.sort(
                rng.choice(customers, self.params.max_validation_customers, replace=False)
            )
        inner = dataset.with_events(split.train)
        members = {name: m.fit(inner) for name, m in self._new_members().items()}
        warm = np.diff(inner.interactions.tocsc().indptr) > 0
        exclude = split.exclude[customers]
        blocks = [
            self._normalise(name, members[name].score(customers), warm, exclude)
            for name in self.member_names
        ]
        relevant = split.test[customers]
        allowed = dataset.product_status == "active"  # only active products are ever served
        k = self.params.tune_k

        def measure(weights: np.ndarray) -> tuple[float, float]:
            fused, _ = _blend(blocks, weights)
            apply_exclusions(fused, exclude)
            recs, _ = top_k(apply_allowed(fused, allowed), k)
            ndcg = float(np.nanmean(accuracy_at_k(recs, relevant, k)["ndcg"]))
            return ndcg, catalogue_coverage(recs, k, dataset.n_products)

        singles = [measure(np.eye(n_members)[i]) for i in range(n_members)]
        best = int(np.argmax([ndcg for ndcg, _ in singles]))
        # Fusion is meant to raise accuracy and coverage together: a blend that narrows the
        # catalogue below the best member's is not accepted, however accurate.
        floor = singles[best][1] if self.params.keep_coverage else -np.inf

        def objective(weights: np.ndarray) -> float:
            ndcg, coverage = measure(weights)
            if coverage < floor:
                return -np.inf
            return ndcg + self.params.coverage_weight * coverage

        weights, _ = coordinate_search(
            objective, np.eye(n_members)[best], self.params.grid, rounds=self.params.rounds
        )
        self.validation_ndcg, self.validation_coverage = measure(weights)
        return weights

    # ---- scoring ---------------------------------------------------------------------------
    def _normalise(
        self,
        name: str,
        scores: np.ndarray,
        warm: np.ndarray,
        exclude: sp.csr_matrix | None = None,
    ) -> _Block:
        """Per-customer normalised scores over the products this member serves.

        Products in ``exclude`` (already held: never shown) are left out of the normalisation,
        so each member's scale is set by the products that compete for the list.
        """
        scores = np.array(scores, dtype=np.float32)
        apply_exclusions(scores, exclude)
        items = warm | (name in FEATURE_BASED)
        if not items.any():
            items = np.ones_like(warm)
        finite = np.isfinite(scores) & items[None, :]
        masked = np.where(finite, scores, np.nan)
        with np.errstate(invalid="ignore", all="ignore"):
            lo, hi = np.nanmin(masked, axis=1), np.nanmax(masked, axis=1)
            rows = np.isfinite(lo) & (hi - lo > _FLAT)
            if self.params.method == "rrf" or self.params.normalisation == "rank":
                order = np.argsort(-np.where(finite, scores, -np.inf), axis=1, kind="stable")
                rank = np.empty_like(order)
                np.put_along_axis(rank, order, np.arange(scores.shape[1])[None, :], axis=1)
                if self.params.method == "rrf":
                    values = 1.0 / (self.params.rrf_k + 1.0 + rank)
                else:
                    count = np.maximum(finite.sum(axis=1, keepdims=True) - 1, 1)
                    values = 1.0 - rank / count
            elif self.params.normalisation == "zscore":
                mean = np.nanmean(masked, axis=1, keepdims=True)
                std = np.nanstd(masked, axis=1, keepdims=True)
                values = (scores - mean) / np.where(std > _FLAT, std, 1.0)
            else:
                values = (scores - lo[:, None]) / np.where(rows, hi - lo, 1.0)[:, None]
        values = np.where(finite & rows[:, None], values, 0.0).astype(np.float32)
        return _Block(values, rows, items)

    def _blocks(
        self,
        customers: np.ndarray | None,
        history: sp.csr_matrix | None = None,
        features: sp.csr_matrix | None = None,
        exclude: sp.csr_matrix | None = None,
    ) -> list[_Block]:
        """Normalised member scores for known ``customers`` or for unseen customers' inputs."""
        n = len(customers) if customers is not None else _rows(history, features)
        blocks: list[_Block] = []
        for name in self.member_names:
            member = self.members.get(name)  # absent when its weight is zero
            scores: np.ndarray | None = None
            if member is not None:
                try:
                    scores = (
                        member.score(customers)
                        if customers is not None
                        else member.score_cold(history, features)
                    )
                except ColdStartUnsupported:
                    scores = None  # routed to the members that can serve these customers
            if scores is None:
                blocks.append(
                    _Block(
                        np.zeros((n, self.n_products), np.float32),
                        np.zeros(n, bool),
                        np.zeros(self.n_products, bool),
                    )
                )
            else:
                blocks.append(self._normalise(name, scores, self.warm_product, exclude))
        return blocks

    def _score(self, customers: np.ndarray) -> np.ndarray:
        return _blend(self._blocks(customers), self.weights)[0]

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        blocks = self._blocks(None, history, features)
        if not any(b.rows.any() for b in blocks):
            raise ColdStartUnsupported(
                "no fusion member can score these customers from what was given"
            )
        return _blend(blocks, self.weights)[0]

    def _similar(self, products: np.ndarray) -> np.ndarray:
        total = np.zeros((len(products), self.n_products), dtype=np.float32)
        for name, weight in zip(self.member_names, self.weights, strict=True):
            if weight > 0:
                raw = self.members[name]._similar(products)
                total += weight * self._normalise(name, raw, np.ones(self.n_products, bool)).values
        return total

    def recommend(
        self,
        customers: np.ndarray,
        k: int,
        exclude: sp.spmatrix | sp.sparray | None = None,
        allowed: np.ndarray | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`Recommender.recommend`; excluded products are also left out of the
        per-member normalisation (see :meth:`_normalise`)."""
        idx = self._check_customers(customers)
        excl = None if exclude is None else sp.csr_matrix(exclude)

        def block(start: int, end: int) -> np.ndarray:
            part = None if excl is None else excl[start:end]
            return _blend(self._blocks(idx[start:end], exclude=part), self.weights)[0]

        return self._rank(block, len(idx), k, excl, allowed, chunk_size)

    def recommend_explained(
        self,
        customers: np.ndarray,
        k: int,
        exclude: sp.spmatrix | sp.sparray | None = None,
        allowed: np.ndarray | None = None,
    ) -> Explained:
        """Like :meth:`recommend`, plus each member's contribution to every returned item."""
        idx = self._check_customers(customers)
        excl = None if exclude is None else sp.csr_matrix(exclude)
        fused, parts = _blend(self._blocks(idx, exclude=excl), self.weights, with_parts=True)
        apply_exclusions(fused, exclude)
        fused = apply_allowed(fused, allowed)
        indices, scores = top_k(fused, k)
        safe = np.where(indices >= 0, indices, 0)
        contributions = np.take_along_axis(parts, safe[:, :, None], axis=1)
        contributions[indices < 0] = 0.0
        return Explained(indices, scores, contributions.astype(np.float32), self.member_names)

    # ---- persistence -----------------------------------------------------------------------
    def _arrays(self) -> Arrays:
        return {
            "weights": self.weights,
            "member_names": np.asarray(self.member_names, dtype=str),
            "warm_product": self.warm_product,
            "validation": np.asarray(
                [self.validation_ndcg, self.validation_coverage], dtype=np.float64
            ),
        }

    def _restore(self, arrays: Arrays) -> None:
        names = tuple(str(n) for n in arrays["member_names"])
        if names != self.member_names:
            raise ValueError(f"member names {names} do not match the params {self.member_names}")
        self.weights = arrays["weights"].astype(np.float32)
        self.warm_product = arrays["warm_product"].astype(bool)
        self.validation_ndcg, self.validation_coverage = (
            float(v) for v in arrays["validation"][:2]
        )
        if self.weights.shape != (len(names),) or self.warm_product.shape != (self.n_products,):
            raise ValueError("fusion arrays do not match the members or the product map")

    def _save_files(self, directory: Path) -> None:
        from recommenders.artifacts import save_artifact

        for name, member in self.members.items():
            save_artifact(member, directory / "members" / name)

    def _load_files(self, directory: Path) -> None:
        from recommenders.artifacts import load_artifact
        from recommenders.registry import get_algorithm

        self.members = {}
        for name, weight in zip(self.member_names, self.weights, strict=True):
            if weight <= 0:
                continue
            member = load_artifact(directory / "members" / name, expected=get_algorithm(name))
            if member.product_ids != self.product_ids or member.customer_ids != self.customer_ids:
                raise ValueError(f"member {name} was trained on different ID maps")
            self.members[name] = member


def _rows(history: sp.csr_matrix | None, features: sp.csr_matrix | None) -> int:
    source = history if history is not None else features
    assert source is not None
    return int(source.shape[0])


def _blend(
    blocks: list[_Block], weights: np.ndarray, *, with_parts: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted average over serving members: (fused [n, p], parts [n, p, members]).

    ``parts`` (each member's share of the fused score) is only filled when ``with_parts``.
    """
    n, p = blocks[0].values.shape
    numerator = np.zeros((n, p), dtype=np.float32)
    denominator = np.zeros((n, p), dtype=np.float32)
    parts = np.zeros((n, p, len(blocks) if with_parts else 0), dtype=np.float32)
    for m, (block, weight) in enumerate(zip(blocks, weights, strict=True)):
        if weight <= 0:
            continue
        serves = np.outer(block.rows, block.items)
        part = np.float32(weight) * block.values * serves
        numerator += part
        denominator += np.float32(weight) * serves
        if with_parts:
            parts[:, :, m] = part
    served = denominator > 0
    safe = np.where(served, denominator, 1.0)
    fused = np.where(served, numerator / safe, UNSERVED).astype(np.float32)
    parts /= safe[:, :, None]
    return fused, parts
