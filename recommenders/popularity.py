"""Popularity, global and per customer segment: the baseline and the cold-start fallback."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recommenders.base import Arrays, ColdInput, ModelParams, Recommender
from recommenders.dataset import Dataset


class PopularityParams(ModelParams):
    by_segment: bool = True
    # Pseudo-customers pulling a small segment's shares towards the global shares.
    shrinkage: float = Field(default=10.0, ge=0.0)
    # "customers": share of customers who interacted; "weight": summed (decayed) event weight.
    signal: Literal["customers", "weight"] = "customers"


class PopularityRecommender(Recommender):
    """Scores a product by how many customers (of the customer's segment) took it.

    Any customer can be scored: known customers by their segment at fit time, unseen ones by
    the ``segment=…`` column of their feature row, anyone else by global popularity.
    """

    algorithm: ClassVar[str] = "popularity"
    params_model: ClassVar[type[ModelParams]] = PopularityParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset({"history", "features"})
    params: PopularityParams

    def __init__(self, params: ModelParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        # Row s = segment s; the last row = global. customer_row maps customers to rows.
        self.table = np.zeros((0, 0), dtype=np.float32)
        self.customer_row = np.zeros(0, dtype=np.int32)
        self.segment_vocabulary = np.zeros(0, dtype=str)
        self.product_category = np.zeros(0, dtype=np.int32)

    def _fit(self, dataset: Dataset) -> None:
        matrix = dataset.interactions
        if self.params.signal == "customers":
            matrix = matrix.copy()
            matrix.data = np.ones_like(matrix.data)
        n = max(dataset.n_customers, 1)
        totals = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()
        global_scores = totals / (
            n if self.params.signal == "customers" else max(totals.sum(), 1.0)
        )
        n_seg = len(dataset.segment_vocabulary) if self.params.by_segment else 0
        rows = [global_scores]
        segment = dataset.customer_segment
        if n_seg:
            member = segment >= 0
            indicator = sp.csr_matrix(
                (np.ones(int(member.sum())), (segment[member], np.flatnonzero(member))),
                shape=(n_seg, dataset.n_customers),
            )
            seg_totals = np.asarray((indicator @ matrix).todense(), dtype=np.float64)
            if self.params.signal == "customers":
                sizes = np.bincount(segment[member], minlength=n_seg).astype(np.float64)
            else:
                sizes = seg_totals.sum(axis=1)
            m = self.params.shrinkage
            seg_scores = (seg_totals + m * global_scores[None, :]) / np.maximum(sizes + m, 1e-12)[
                :, None
            ]
            rows = [*seg_scores, global_scores]
        self.table = np.vstack(rows).astype(np.float32)
        self.customer_row = (
            np.where(segment >= 0, segment, n_seg).astype(np.int32)
            if n_seg
            else np.zeros(dataset.n_customers, dtype=np.int32)
        )
        self.segment_vocabulary = np.asarray(dataset.segment_vocabulary[:n_seg], dtype=str)
        self.product_category = dataset.product_category.astype(np.int32)

    def _score(self, customers: np.ndarray) -> np.ndarray:
        return np.asarray(self.table[self.customer_row[customers]])

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        n = features.shape[0] if features is not None else history.shape[0]  # type: ignore[union-attr]
        rows = np.full(n, self.table.shape[0] - 1, dtype=np.int64)
        if features is not None and self.segment_vocabulary.size:
            assert self.context is not None
            names = list(self.context.customer_encoder.names)
            columns = np.asarray(
                [
                    names.index(f"segment={s}") if f"segment={s}" in names else -1
                    for s in self.segment_vocabulary
                ]
            )
            usable = np.flatnonzero(columns >= 0)
            if usable.size:
                block = features[:, columns[usable]].toarray()
                has = block.max(axis=1) > 0
                rows[has] = usable[block.argmax(axis=1)[has]]
        return np.asarray(self.table[rows])

    def _similar(self, products: np.ndarray) -> np.ndarray:
        """Popular products of the same category first ("customers also take"), then others."""
        same = self.product_category[products][:, None] == self.product_category[None, :]
        return np.asarray(self.table[-1][None, :] + same.astype(np.float32) * 2.0)

    def _arrays(self) -> Arrays:
        return {
            "table": self.table,
            "customer_row": self.customer_row,
            "segment_vocabulary": self.segment_vocabulary,
            "product_category": self.product_category,
        }

    def _restore(self, arrays: Arrays) -> None:
        self.table = arrays["table"].astype(np.float32, copy=False)
        self.customer_row = arrays["customer_row"].astype(np.int32, copy=False)
        self.segment_vocabulary = arrays["segment_vocabulary"].astype(str)
        self.product_category = arrays["product_category"].astype(np.int32, copy=False)
        if self.table.shape[1] != self.n_products or self.customer_row.size != self.n_customers:
            raise ValueError("popularity table does not match the ID maps")
