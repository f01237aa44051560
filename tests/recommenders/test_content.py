"""Content-based: segment take-up prior, attribute matching, products nobody has taken."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommenders.content import ContentRecommender
from recommenders.dataset import Dataset


def _segment_row(dataset: Dataset, segment: str) -> np.ndarray:
    frame = pd.DataFrame([{"customer_id": "new", "segment": segment}])
    return np.asarray(dataset.customer_encoder.encode(frame).toarray())


def test_a_new_customer_gets_their_segments_products_from_attributes_alone(
    tiny_dataset: Dataset,
) -> None:
    model = ContentRecommender(declared_weight=0.0, history_weight=0.0).fit(tiny_dataset)
    index = tiny_dataset.product_ids.to_index
    for segment, block in (("mass", ["P0", "P1", "P2"]), ("affluent", ["P3", "P4", "P5"])):
        top, _ = model.recommend_cold(None, _segment_row(tiny_dataset, segment), k=3)
        assert set(top[0].tolist()) == set(index(block).tolist())


def test_the_prior_is_per_segment_and_known_customers_use_their_own_segment(
    tiny_dataset: Dataset,
) -> None:
    model = ContentRecommender().fit(tiny_dataset)
    p0, p3 = tiny_dataset.product_ids.to_index(["P0", "P3"])
    mass = tiny_dataset.segment_vocabulary.index("mass")
    assert model.prior[mass, p0] > model.prior[mass, p3]
    customer = int(tiny_dataset.customer_ids.to_index(["a00"])[0])
    assert model.customer_row[customer] == mass


def test_a_product_nobody_took_borrows_a_prior_from_similar_products(
    tiny_dataset: Dataset,
) -> None:
    model = ContentRecommender().fit(tiny_dataset)
    (p6,) = tiny_dataset.product_ids.to_index(["P6"])
    assert tiny_dataset.interactions[:, p6].nnz == 0
    assert (model.prior[:, p6] > 0).all()
    assert (model.prior[:, p6] <= model.prior.max(axis=1)).all()
