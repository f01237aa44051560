"""Content-based: product attribute/tag vectors against a customer profile.

A product is its attribute vector (category, risk level, tags, free-form attributes), IDF
weighted so that attributes every product shares count for little, and unit length.

A customer's profile has two parts:
- from history: the weighted mean of the vectors of the products they interacted with;
- from declared attributes (segment, risk class, age band, income band, ...): for each
  attribute, the mean product vector of what customers with that attribute took, learned at fit.
  A customer with no history is profiled from these alone; a product with no interactions is
  still scored by its attributes.
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
    # Small prior so that products with identical attributes are ordered by take-up.
    popularity_weight: float = Field(default=0.05, ge=0.0)


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
    params_model: ClassVar[type[ModelParams]] = ContentParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"history", "features"})
    params: ContentParams

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.product_vectors = np.zeros((0, 0), dtype=np.float32)  # P x f, unit rows
        self.declared_map = np.zeros((0, 0), dtype=np.float32)  # customer features x f
        self.popularity = np.zeros(0, dtype=np.float32)  # P, in [0, 1]
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
        takers = np.bincount(dataset.interactions.indices, minlength=dataset.n_products)
        self.popularity = (takers / max(int(takers.max(initial=0)), 1)).astype(np.float32)

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
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        scores = self.profiles(history, features) @ self.product_vectors.T
        scores += self.params.popularity_weight * self.popularity[None, :]
        return np.asarray(scores, dtype=np.float32)

    def _score(self, customers: np.ndarray) -> np.ndarray:
        return self._scores_from(self.history[customers], self.customer_features[customers])

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        return self._scores_from(_l1_rows(history) if history is not None else None, features)

    def _similar(self, products: np.ndarray) -> np.ndarray:
        return np.asarray(self.product_vectors[products] @ self.product_vectors.T)

    def _arrays(self) -> Arrays:
        return {
            "product_vectors": self.product_vectors,
            "declared_map": self.declared_map,
            "popularity": self.popularity,
            **pack_csr("history", self.history),
            **pack_csr("customer_features", self.customer_features),
        }

    def _restore(self, arrays: Arrays) -> None:
        self.product_vectors = arrays["product_vectors"].astype(np.float32, copy=False)
        self.declared_map = arrays["declared_map"].astype(np.float32, copy=False)
        self.popularity = arrays["popularity"].astype(np.float32, copy=False)
        self.history = unpack_csr(arrays, "history")
        self.customer_features = unpack_csr(arrays, "customer_features")
        if self.product_vectors.shape[0] != self.n_products or self.history.shape != (
            self.n_customers,
            self.n_products,
        ):
            raise ValueError("content arrays do not match the ID maps")
