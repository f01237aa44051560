"""LightFM hybrid (WARP by default) over customer and product features.

LightFM represents a customer (product) as the sum of the embeddings of its features. After
training those sums are computed once and kept as plain arrays, so scoring needs no LightFM
object: score = customer_vector · product_vector + customer_bias + product_bias, exactly
LightFM's prediction. Customers unseen at fit time are scored from their feature rows with the
saved feature embeddings; products that nobody took are scored through their attributes.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recommenders.base import Arrays, ColdInput, ModelParams, VectorModel
from recommenders.dataset import Dataset


class LightFMParams(ModelParams):
    components: int = Field(default=32, ge=1)
    loss: Literal["warp", "bpr", "warp-kos", "logistic"] = "warp"
    epochs: int = Field(default=30, ge=1)
    learning_rate: float = Field(default=0.05, gt=0.0)
    item_alpha: float = Field(default=1e-6, ge=0.0)
    user_alpha: float = Field(default=1e-6, ge=0.0)
    max_sampled: int = Field(default=10, ge=1)
    # Identity features let the model learn per-customer/per-product corrections on top of
    # the attributes; cold rows simply have no identity part.
    customer_identity: bool = True
    product_identity: bool = True
    random_state: int = 42
    num_threads: int = Field(default=1, ge=1)


def _with_identity(features: sp.csr_matrix, identity: bool) -> sp.csr_matrix:
    """Feature rows summing to 1; with identity, half identity and half features.

    The fixed half-and-half split keeps the identity strong enough to learn from when the
    declared features say little, and lets a cold row (features only) use the same scale.
    """
    rows = _sum_one(features)
    if not identity:
        return rows
    eye = sp.identity(features.shape[0], dtype=np.float32, format="csr")
    return sp.csr_matrix(sp.hstack([0.5 * eye, 0.5 * rows], format="csr"), dtype=np.float32)


def _sum_one(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)


class LightFMRecommender(VectorModel):
    """Hybrid factorisation with features on both sides; cold customers need feature rows."""

    algorithm: ClassVar[str] = "lightfm"
    params_model: ClassVar[type[ModelParams]] = LightFMParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"features"})
    params: LightFMParams

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        # Embeddings and biases of the declared customer features (no identity rows).
        self.feature_embeddings = np.zeros((0, 0), dtype=np.float32)
        self.feature_biases = np.zeros(0, dtype=np.float32)

    def _fit(self, dataset: Dataset) -> None:
        from lightfm import LightFM

        p = self.params
        customer_rows = _with_identity(
            sp.csr_matrix(dataset.customer_features, dtype=np.float32), p.customer_identity
        )
        product_rows = _with_identity(
            sp.csr_matrix(dataset.product_features, dtype=np.float32), p.product_identity
        )
        positives = sp.coo_matrix(dataset.interactions, dtype=np.float32)
        positives.data = np.ones_like(positives.data)
        model = LightFM(
            no_components=p.components,
            loss=p.loss,
            learning_rate=p.learning_rate,
            item_alpha=p.item_alpha,
            user_alpha=p.user_alpha,
            max_sampled=p.max_sampled,
            random_state=p.random_state,
        )
        model.fit(
            positives,
            user_features=customer_rows,
            item_features=product_rows,
            epochs=p.epochs,
            num_threads=p.num_threads,
        )
        user_emb = np.asarray(model.user_embeddings, dtype=np.float32)
        user_bias = np.asarray(model.user_biases, dtype=np.float32)
        item_emb = np.asarray(model.item_embeddings, dtype=np.float32)
        item_bias = np.asarray(model.item_biases, dtype=np.float32)
        self.customer_factors = np.asarray(customer_rows @ user_emb, dtype=np.float32)
        self.customer_bias = np.asarray(customer_rows @ user_bias, dtype=np.float32)
        self.product_factors = np.asarray(product_rows @ item_emb, dtype=np.float32)
        self.product_bias = np.asarray(product_rows @ item_bias, dtype=np.float32)
        offset = dataset.n_customers if p.customer_identity else 0
        self.feature_embeddings = np.ascontiguousarray(user_emb[offset:])
        self.feature_biases = np.ascontiguousarray(user_bias[offset:])

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        assert features is not None
        rows = _sum_one(features)
        if self.params.customer_identity:
            rows = 0.5 * rows  # the scale features have in known customers' rows
        factors = np.asarray(rows @ self.feature_embeddings, dtype=np.float32)
        bias = np.asarray(rows @ self.feature_biases, dtype=np.float32)
        return self._dot(factors, bias)

    def _arrays(self) -> Arrays:
        return {
            **super()._arrays(),
            "feature_embeddings": self.feature_embeddings,
            "feature_biases": self.feature_biases,
        }

    def _restore(self, arrays: Arrays) -> None:
        super()._restore(arrays)
        self.feature_embeddings = arrays["feature_embeddings"].astype(np.float32, copy=False)
        self.feature_biases = arrays["feature_biases"].astype(np.float32, copy=False)
