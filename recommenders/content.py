"""Content-based: product attribute/tag vectors against a customer profile.

A product is its attribute vector (category, risk level, tags, free-form attributes), IDF
weighted so that attributes every product shares count for little, and unit length.

A customer's profile has two parts:
- from history: the weighted mean of the vectors of the products they interacted with;
- from declared attributes (segment, risk class, age band, income band, ...): for each
  attribute, the mean product vector of what customers with that attribute took, learned at fit.
  A customer with no history is profiled from these alone; a product with no interactions is
  still scored by its attributes.

On top of the attribute match sits a prior: the take-up rate of each product within the
customer's segment (shrunk towards the global rate for small segments), learned at fit. Customers
of one segment want broadly the same products, and products with near-identical attributes are
told apart by who actually takes them. Unseen customers get their segment's prior from the
``segment=…`` column of their feature row, or the global one. A product nobody took at fit time
has no rate of its own, and zero would bury it under every product with a track record; it
borrows the similarity-weighted mean rate of its ``cold_neighbours`` most similar products
instead, so a new product is ranked by its attributes against established ones.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recommenders.base import Arrays, ColdInput, ModelParams, Recommender, pack_csr, unpack_csr
from recommenders.dataset import Dataset


class ContentParams(ModelParams):
    history_weight: float = Field(default=1.0, ge=0.0)
    declared_weight: float = Field(default=0.5, ge=0.0)
    idf: bool = True
    # Weight of the segment take-up prior (rates scaled to a maximum of 1 per segment).
    popularity_weight: float = Field(default=1.0, ge=0.0)
    # Pseudo-customers pulling a small segment's rates towards the global rates.
    shrinkage: float = Field(default=10.0, ge=0.0)
    # Products a product with no take-up borrows its prior from (most similar by attributes).
    cold_neighbours: int = Field(default=5, ge=1)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _l1_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(abs(matrix).sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)


class ContentRecommender(Recommender):
    """Attribute matching; serves customers with no history and products with no interactions."""

    algorithm: ClassVar[str] = "content"
    layout_version: ClassVar[int] = 2  # 2: per-segment take-up priors
    params_model: ClassVar[type[ModelParams]] = ContentParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"history", "features"})
    params: ContentParams

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.product_vectors = np.zeros((0, 0), dtype=np.float32)  # P x f, unit rows
        self.declared_map = np.zeros((0, 0), dtype=np.float32)  # customer features x f
        # Row s = segment s's take-up rates, last row = global; each row scaled to max 1.
        self.prior = np.zeros((0, 0), dtype=np.float32)
        self.customer_row = np.zeros(0, dtype=np.int32)  # row of self.prior per customer
        # Customer-feature column of each segment's "segment=…" flag (-1 = not encoded).
        self.segment_columns = np.zeros(0, dtype=np.int32)
        self.history = sp.csr_matrix((0, 0), dtype=np.float32)  # L1-normalised rows
        self.customer_features = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, dataset: Dataset) -> None:
        features = sp.csr_matrix(dataset.product_features, dtype=np.float32)
        n_products = max(dataset.n_products, 1)
        weights = np.ones(features.shape[1], dtype=np.float64)
        if self.params.idf:
            df = np.bincount(features.indices, minlength=features.shape[1])
            weights = np.log((1.0 + n_products) / (1.0 + df)) + 1.0
        self.product_vectors = _unit_rows(features.toarray() * weights[None, :])
        self.history = _l1_rows(dataset.interactions)
        self.customer_features = sp.csr_matrix(dataset.customer_features, dtype=np.float32)
        # Mean history profile of the customers holding each declared attribute.
        totals = np.asarray((self.customer_features.T @ self.history).toarray())
        self.declared_map = _unit_rows(totals @ self.product_vectors)
        self._fit_prior(dataset)

    def _fit_prior(self, dataset: Dataset) -> None:
        took = sp.csr_matrix(dataset.interactions, dtype=np.float64, copy=True)
        took.data = (took.data > 0).astype(np.float64)
        global_rate = np.asarray(took.sum(axis=0)).ravel() / max(dataset.n_customers, 1)
        segment = dataset.customer_segment
        n_seg = len(dataset.segment_vocabulary)
        member = np.flatnonzero(segment >= 0)
        indicator = sp.csr_matrix(
            (np.ones(member.size), (segment[member], member)), shape=(n_seg, dataset.n_customers)
        )
        sizes = np.bincount(segment[member], minlength=n_seg).astype(np.float64)
        m = self.params.shrinkage
        seg_rate = (np.asarray((indicator @ took).todense()) + m * global_rate[None, :]) / (
            np.maximum(sizes + m, 1e-12)[:, None]
        )
        table = np.vstack([seg_rate, global_rate[None, :]])
        self._borrow_for_cold(table, global_rate > 0)
        peak = table.max(axis=1, keepdims=True)
        self.prior = (table / np.where(peak > 0, peak, 1.0)).astype(np.float32)
        self.customer_row = np.where(segment >= 0, segment, n_seg).astype(np.int32)
        names = {name: i for i, name in enumerate(dataset.customer_feature_names)}
        self.segment_columns = np.asarray(
            [names.get(f"segment={s}", -1) for s in dataset.segment_vocabulary], dtype=np.int32
        )

    def _borrow_for_cold(self, table: np.ndarray, warm: np.ndarray) -> None:
        """Fill the prior columns of products nobody took from their most similar warm ones."""
        cold = np.flatnonzero(~warm)
        if not cold.size or not warm.any():
            return
        warm_idx = np.flatnonzero(warm)
        similarity = self.product_vectors[cold] @ self.product_vectors[warm_idx].T
        keep = min(self.params.cold_neighbours, warm_idx.size)
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :keep]
        weight = np.maximum(np.take_along_axis(similarity, nearest, axis=1), 0.0)
        total = weight.sum(axis=1, keepdims=True)
        weight = np.where(total > 0, weight / np.where(total > 0, total, 1.0), 1.0 / keep)
        # table[:, warm_idx[nearest]] is (rows, cold, keep); weighted mean over the last axis.
        table[:, cold] = np.einsum("rck,ck->rc", table[:, warm_idx[nearest]], weight)

    def _prior_rows(self, features: sp.csr_matrix | None, n: int) -> np.ndarray:
        """Prior row per unseen customer: their segment's, else the global one."""
        rows = np.full(n, self.prior.shape[0] - 1, dtype=np.int64)
        usable = np.flatnonzero(self.segment_columns >= 0)
        if features is not None and usable.size:
            block = features[:, self.segment_columns[usable]].toarray()
            has = block.max(axis=1) > 0
            rows[has] = usable[block.argmax(axis=1)[has]]
        return rows

    def profiles(self, history: sp.csr_matrix | None, features: sp.csr_matrix | None) -> np.ndarray:
        """Customer profiles (n x f) from L1-normalised history rows and/or feature rows."""
        n = history.shape[0] if history is not None else features.shape[0]  # type: ignore[union-attr]
        profile = np.zeros((n, self.product_vectors.shape[1]), dtype=np.float32)
        if history is not None and self.params.history_weight > 0:
            profile += self.params.history_weight * _unit_rows(history @ self.product_vectors)
        if features is not None and self.params.declared_weight > 0:
            profile += self.params.declared_weight * _unit_rows(features @ self.declared_map)
        return profile

    def _scores_from(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None, rows: np.ndarray
    ) -> np.ndarray:
        scores = self.profiles(history, features) @ self.product_vectors.T
        scores += self.params.popularity_weight * self.prior[rows]
        return np.asarray(scores, dtype=np.float32)

    def _score(self, customers: np.ndarray) -> np.ndarray:
        return self._scores_from(
            self.history[customers], self.customer_features[customers], self.customer_row[customers]
        )

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        n = history.shape[0] if history is not None else features.shape[0]  # type: ignore[union-attr]
        return self._scores_from(
            _l1_rows(history) if history is not None else None,
            features,
            self._prior_rows(features, n),
        )

    def _similar(self, products: np.ndarray) -> np.ndarray:
        return np.asarray(self.product_vectors[products] @ self.product_vectors.T)

    def _arrays(self) -> Arrays:
        return {
            "product_vectors": self.product_vectors,
            "declared_map": self.declared_map,
            "prior": self.prior,
            "customer_row": self.customer_row,
            "segment_columns": self.segment_columns,
            **pack_csr("history", self.history),
            **pack_csr("customer_features", self.customer_features),
        }

    def _restore(self, arrays: Arrays) -> None:
        self.product_vectors = arrays["product_vectors"].astype(np.float32, copy=False)
        self.declared_map = arrays["declared_map"].astype(np.float32, copy=False)
        self.prior = arrays["prior"].astype(np.float32, copy=False)
        self.customer_row = arrays["customer_row"].astype(np.int32, copy=False)
        self.segment_columns = arrays["segment_columns"].astype(np.int32, copy=False)
        self.history = unpack_csr(arrays, "history")
        self.customer_features = unpack_csr(arrays, "customer_features")
        if (
            self.product_vectors.shape[0] != self.n_products
            or self.history.shape != (self.n_customers, self.n_products)
            or self.prior.shape[1:] != (self.n_products,)
            or self.customer_row.shape != (self.n_customers,)
            or self.segment_columns.shape != (self.prior.shape[0] - 1,)
        ):
            raise ValueError("content arrays do not match the ID maps")
