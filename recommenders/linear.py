"""EASE: a closed-form linear item-item model (Steck, 2019).

B = argmin ‖X - XB‖² + λ‖B‖² subject to diag(B) = 0, solved exactly with one P x P inverse.
Bank catalogues are small (hundreds to a few thousand products), so the dense P x P weights
are cheap to fit, store and score with.

Customer attributes (segment, risk class, age and income bands, ...) enter as extra input
columns: X is widened to [X | w·F] with F the customers' one-hot feature rows, B is solved over
all P + F columns, and only the product columns of the output are kept. The F x P block of B
then says which products each attribute predicts, so a customer's segment informs their scores
the way a held product does. ``feature_weight`` = 0 gives plain EASE.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recommenders.base import Arrays, ColdInput, ModelParams, Recommender, pack_csr, unpack_csr
from recommenders.dataset import Dataset
from recommenders.errors import ColdStartUnsupported


class EASEParams(ModelParams):
    l2: float = Field(default=200.0, gt=0.0)  # λ, added to the diagonal of XᵀX
    binarize: bool = True  # fit on "took it or not" rather than the weighted matrix
    max_products: int = Field(default=20_000, ge=1)  # refuse catalogues whose P x P won't fit
    # Scale of the one-hot customer-attribute columns appended to X; 0 = items only.
    feature_weight: float = Field(default=1.0, ge=0.0)


class EASERecommender(Recommender):
    """Scores = [X | w·F]·B with B the closed-form weights over products and customer attributes.

    Cold customers are scored from history, attributes or both (attributes only when
    ``feature_weight`` > 0).
    """

    algorithm: ClassVar[str] = "ease"
    layout_version: ClassVar[int] = 2  # 2: customer-attribute columns in the solve
    params_model: ClassVar[type[ModelParams]] = EASEParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"history", "features"})
    params: EASEParams

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        # (P + F) x P: product rows first, then one row per customer-attribute column.
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.history = sp.csr_matrix((0, 0), dtype=np.float32)
        self.customer_features = sp.csr_matrix((0, 0), dtype=np.float32)

    def _input(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        if not self.params.binarize:
            return sp.csr_matrix(matrix, dtype=np.float32)
        out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        out.data = (out.data > 0).astype(np.float32)
        return out

    def _fit(self, dataset: Dataset) -> None:
        n_products = dataset.n_products
        if n_products > self.params.max_products:
            raise ValueError(
                f"ease needs a dense {n_products}x{n_products} matrix; raise "
                f"max_products (now {self.params.max_products}) if that fits"
            )
        x = self._input(dataset.interactions)
        features = sp.csr_matrix(dataset.customer_features, dtype=np.float32)
        if self.params.feature_weight == 0:
            features = sp.csr_matrix((dataset.n_customers, 0), dtype=np.float32)
        wide = sp.hstack([x, self.params.feature_weight * features], format="csr")
        n_inputs = wide.shape[1]
        gram = (wide.T @ wide).toarray().astype(np.float64)
        gram[np.diag_indices(n_inputs)] += self.params.l2
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)[None, :]
        weights[np.diag_indices(n_inputs)] = 0.0
        # Only the product columns are outputs; attribute columns are inputs only.
        self.weights = np.ascontiguousarray(weights[:, :n_products], dtype=np.float32)
        self.history = x
        self.customer_features = features

    @property
    def uses_features(self) -> bool:
        """Whether customer-attribute rows are inputs (the weights have rows for them)."""
        return self.weights.shape[0] > self.weights.shape[1]

    def _scores_from(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        n_products = self.weights.shape[1]
        n = history.shape[0] if history is not None else features.shape[0]  # type: ignore[union-attr]
        scores = np.zeros((n, n_products), dtype=np.float32)
        if history is not None:
            scores += np.asarray(history @ self.weights[:n_products])
        if features is not None and self.uses_features:
            scores += self.params.feature_weight * np.asarray(features @ self.weights[n_products:])
        return scores

    def _score(self, customers: np.ndarray) -> np.ndarray:
        features = self.customer_features[customers] if self.uses_features else None
        return self._scores_from(self.history[customers], features)

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        if history is None and not self.uses_features:
            raise ColdStartUnsupported(
                "ease was fitted without customer attributes (feature_weight=0); "
                "score unseen customers from their history"
            )
        return self._scores_from(self._input(history) if history is not None else None, features)

    def _similar(self, products: np.ndarray) -> np.ndarray:
        return np.asarray(self.weights[products])

    def _arrays(self) -> Arrays:
        return {
            "weights": self.weights,
            **pack_csr("history", self.history),
            **pack_csr("customer_features", self.customer_features),
        }

    def _restore(self, arrays: Arrays) -> None:
        self.weights = arrays["weights"].astype(np.float32, copy=False)
        self.history = unpack_csr(arrays, "history")
        self.customer_features = unpack_csr(arrays, "customer_features")
        n_products = self.n_products
        n_inputs = n_products + self.customer_features.shape[1]
        if (
            self.weights.shape != (n_inputs, n_products)
            or self.history.shape != (self.n_customers, n_products)
            or self.customer_features.shape[0] != self.n_customers
        ):
            raise ValueError("weights/history/customer_features shapes do not match the ID maps")
