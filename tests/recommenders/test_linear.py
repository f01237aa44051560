"""EASE with customer-attribute inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommenders.dataset import Dataset
from recommenders.errors import ColdStartUnsupported
from recommenders.linear import EASERecommender


def _segment_row(dataset: Dataset, segment: str) -> np.ndarray:
    encoder = dataset.customer_encoder
    frame = pd.DataFrame([{"customer_id": "new", "segment": segment}])
    return np.asarray(encoder.encode(frame).toarray())


def test_attributes_alone_point_a_new_customer_to_their_segments_products(
    tiny_dataset: Dataset,
) -> None:
    model = EASERecommender(l2=1.0).fit(tiny_dataset)
    n_products = tiny_dataset.n_products
    assert model.weights.shape == (
        n_products + len(tiny_dataset.customer_feature_names),
        n_products,
    )
    index = tiny_dataset.product_ids.to_index
    for segment, block in (("mass", ["P0", "P1", "P2"]), ("affluent", ["P3", "P4", "P5"])):
        top, _ = model.recommend_cold(None, _segment_row(tiny_dataset, segment), k=3)
        assert set(top[0].tolist()) == set(index(block).tolist())


def test_without_attribute_inputs_it_is_plain_ease_and_needs_history(
    tiny_dataset: Dataset,
) -> None:
    model = EASERecommender(l2=1.0, feature_weight=0.0).fit(tiny_dataset)
    assert model.weights.shape == (tiny_dataset.n_products, tiny_dataset.n_products)
    with pytest.raises(ColdStartUnsupported, match="feature_weight"):
        model.score_cold(None, _segment_row(tiny_dataset, "mass"))
    # Known customers still score from history alone.
    top, _ = model.recommend(np.array([0]), k=1, exclude=tiny_dataset.holdings[[0]])
    assert top[0, 0] in tiny_dataset.product_ids.to_index(["P0", "P1", "P2"])
