"""EASE: a closed-form linear item-item model (Steck, 2019).

B = argmin ‖X - XB‖² + λ‖B‖² subject to diag(B) = 0, solved exactly with one P x P inverse.
Bank catalogues are small (hundreds to a few thousand products), so the dense P x P weights
are cheap to fit, store and score with.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recommenders.base import Arrays, ColdInput, ModelParams, Recommender, pack_csr, unpack_csr
from recommenders.dataset import Dataset


class EASEParams(ModelParams):
    l2: float = Field(default=200.0, gt=0.0)  # λ, added to the diagonal of XᵀX
    binarize: bool = True  # fit on "took it or not" rather than the weighted matrix
    max_products: int = Field(default=20_000, ge=1)  # refuse catalogues whose P x P won't fit


class EASERecommender(Recommender):
    """Scores = X·B with B the closed-form item weights; history-only cold start."""

    algorithm: ClassVar[str] = "ease"
    params_model: ClassVar[type[ModelParams]] = EASEParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"history"})
    params: EASEParams

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.history = sp.csr_matrix((0, 0), dtype=np.float32)

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
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices(n_products)] += self.params.l2
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)[None, :]
        weights[np.diag_indices(n_products)] = 0.0
        self.weights = weights.astype(np.float32)
        self.history = x

    def _score(self, customers: np.ndarray) -> np.ndarray:
        return np.asarray(self.history[customers] @ self.weights)

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        assert history is not None
        return np.asarray(self._input(history) @ self.weights)

    def _similar(self, products: np.ndarray) -> np.ndarray:
        return np.asarray(self.weights[products])

    def _arrays(self) -> Arrays:
        return {"weights": self.weights, **pack_csr("history", self.history)}

    def _restore(self, arrays: Arrays) -> None:
        self.weights = arrays["weights"].astype(np.float32, copy=False)
        self.history = unpack_csr(arrays, "history")
        n_products = self.n_products
        if self.weights.shape != (n_products, n_products) or self.history.shape != (
            self.n_customers,
            n_products,
        ):
            raise ValueError("weights/history shapes do not match the ID maps")
