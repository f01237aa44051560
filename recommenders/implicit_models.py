"""Collaborative filtering from ``implicit``: ALS, BPR and item-item neighbours (cosine, BM25).

"Recommend what similar customers hold". The training matrix is passed to ``implicit`` as it
is (float32 CSR, no copy or re-weighting here), so finrec's training time is implicit's own.
BLAS is held to one thread while ``implicit`` trains: its own threads do the work, and nested
BLAS threads only contend with them.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from recommenders.base import (
    Arrays,
    ColdInput,
    ModelParams,
    Recommender,
    VectorModel,
    pack_csr,
    unpack_csr,
)
from recommenders.dataset import Dataset


class ALSParams(ModelParams):
    factors: int = Field(default=64, ge=1)
    # Not scaled by data size in implicit; event weights reach 8, so a small value overfits.
    regularization: float = Field(default=10.0, ge=0.0)
    alpha: float = Field(default=1.0, gt=0.0)  # confidence = alpha x weighted interaction
    iterations: int = Field(default=15, ge=1)
    use_cg: bool = True
    random_state: int = 42
    num_threads: int = Field(default=0, ge=0)  # 0 = every core


def _fit_factors(model: Any, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Fit an implicit factor model on the weighted matrix; BLAS held to one thread (implicit
    parallelises itself and oversubscribes otherwise). Returns (customer, product) factors."""
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(dataset.interactions, show_progress=False)
    return (
        np.ascontiguousarray(model.user_factors, dtype=np.float32),
        np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )


class ALSRecommender(VectorModel):
    """Implicit-feedback matrix factorisation (alternating least squares).

    Customers unseen at fit time are folded in from their history by one least-squares step
    against the fixed product factors (the same equation ALS solves for known customers).
    """

    algorithm: ClassVar[str] = "als"
    params_model: ClassVar[type[ModelParams]] = ALSParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"history"})
    params: ALSParams

    def _fit(self, dataset: Dataset) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        p = self.params
        model = AlternatingLeastSquares(
            factors=p.factors,
            regularization=p.regularization,
            alpha=p.alpha,
            iterations=p.iterations,
            use_cg=p.use_cg,
            random_state=p.random_state,
            num_threads=p.num_threads,
            dtype=np.float32,
        )
        self.customer_factors, self.product_factors = _fit_factors(model, dataset)

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        assert history is not None
        return self._dot(self.fold_in(history), None)

    def fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Customer factors for history rows: (YᵀCᵤY + λI)⁻¹ YᵀCᵤpᵤ with Y fixed."""
        y = self.product_factors.astype(np.float64)
        base = y.T @ y + self.params.regularization * np.eye(y.shape[1])
        out = np.zeros((history.shape[0], y.shape[1]), dtype=np.float32)
        for row in range(history.shape[0]):
            start, end = history.indptr[row], history.indptr[row + 1]
            if start == end:
                continue  # no history: zero factors, scores all zero
            items = history.indices[start:end]
            confidence = self.params.alpha * history.data[start:end].astype(np.float64)
            yi = y[items]
            a = base + yi.T @ ((confidence - 1.0)[:, None] * yi)
            out[row] = np.linalg.solve(a, yi.T @ confidence)
        return out


class BPRParams(ModelParams):
    factors: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=0.05, gt=0.0)
    regularization: float = Field(default=0.01, ge=0.0)
    iterations: int = Field(default=100, ge=1)
    random_state: int = 42
    num_threads: int = Field(default=0, ge=0)


class BPRRecommender(VectorModel):
    """Bayesian personalised ranking (pairwise). Refuses unseen customers: no closed fold-in.

    implicit keeps each product's bias in the last factor column (customers' last column is 1),
    so the shared dot product already includes it.
    """

    algorithm: ClassVar[str] = "bpr"
    params_model: ClassVar[type[ModelParams]] = BPRParams
    params: BPRParams

    def _fit(self, dataset: Dataset) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        p = self.params
        model = BayesianPersonalizedRanking(
            factors=p.factors,
            learning_rate=p.learning_rate,
            regularization=p.regularization,
            iterations=p.iterations,
            random_state=p.random_state,
            num_threads=p.num_threads,
            dtype=np.float32,
        )
        self.customer_factors, self.product_factors = _fit_factors(model, dataset)

    def _similar(self, products: np.ndarray) -> np.ndarray:
        factors = self.product_factors[:, :-1]  # leave the bias column out of the angle
        norms = np.linalg.norm(factors, axis=1)
        norms[norms == 0] = 1.0
        unit = factors / norms[:, None]
        return np.asarray(unit[products] @ unit.T)


class ItemKNNParams(ModelParams):
    similarity: Literal["cosine", "bm25"] = "bm25"
    neighbours: int = Field(default=50, ge=1)  # kept per product
    bm25_k1: float = Field(default=1.2, gt=0.0)
    bm25_b: float = Field(default=0.75, ge=0.0, le=1.0)
    num_threads: int = Field(default=0, ge=0)


class ItemKNNRecommender(Recommender):
    """Item-item neighbours: a customer's score for j = Σ over their products i of w_i · S[i, j].

    The similarity matrix S is kept sparse (``neighbours`` per product) and saved as such.
    """

    algorithm: ClassVar[str] = "itemknn"
    params_model: ClassVar[type[ModelParams]] = ItemKNNParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"history"})
    params: ItemKNNParams

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.history = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, dataset: Dataset) -> None:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        p = self.params
        model: CosineRecommender | BM25Recommender
        if p.similarity == "cosine":
            model = CosineRecommender(K=p.neighbours, num_threads=p.num_threads)
        else:
            model = BM25Recommender(
                K=p.neighbours, K1=p.bm25_k1, B=p.bm25_b, num_threads=p.num_threads
            )
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # implicit's own cosine/BM25 weighting hands itself a COO matrix and warns about it.
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(dataset.interactions, show_progress=False)
        self.similarity = sp.csr_matrix(model.similarity, dtype=np.float32)
        self.history = dataset.interactions

    def _score(self, customers: np.ndarray) -> np.ndarray:
        return np.asarray((self.history[customers] @ self.similarity).toarray())

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        assert history is not None
        return np.asarray((history @ self.similarity).toarray())

    def _similar(self, products: np.ndarray) -> np.ndarray:
        return np.asarray(self.similarity[products].toarray())

    def _arrays(self) -> Arrays:
        return {**pack_csr("similarity", self.similarity), **pack_csr("history", self.history)}

    def _restore(self, arrays: Arrays) -> None:
        self.similarity = unpack_csr(arrays, "similarity")
        self.history = unpack_csr(arrays, "history")
        n_products = self.n_products
        if self.similarity.shape != (n_products, n_products) or self.history.shape != (
            self.n_customers,
            n_products,
        ):
            raise ValueError("similarity/history shapes do not match the ID maps")
