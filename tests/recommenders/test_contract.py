"""The contract every registered recommender passes; new algorithms are picked up automatically.

Each algorithm is built through its ``build_for_contract`` hook (composite models override it to
wire their members) and fitted once on the tiny two-block dataset from ``conftest.py``: savers
hold two of deposits P0-P2, investors two of funds P3-P5, so after excluding holdings the one
right answer is the block product they lack.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommenders.artifacts import load_artifact
from recommenders.base import Recommender
from recommenders.dataset import Dataset
from recommenders.errors import ColdStartUnsupported, NotFittedError
from recommenders.registry import ALGORITHMS


@pytest.fixture(scope="module", params=sorted(ALGORITHMS))
def model(request: pytest.FixtureRequest, tiny_dataset: Dataset) -> Recommender:
    cls = ALGORITHMS[request.param]
    return cls.build_for_contract(tiny_dataset).fit(tiny_dataset)


def block_of(customer: int) -> set[int]:
    return {0, 1, 2} if customer < 12 else {3, 4, 5}


def missing_product(dataset: Dataset, customer: int) -> int:
    held = set(dataset.holdings[customer].indices.tolist())
    (missing,) = block_of(customer) - held
    return missing


class TestRecommenderContract:
    def test_known_answer_after_excluding_holdings(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        customers = np.arange(tiny_dataset.n_customers)
        idx, scores = model.recommend(customers, 1, exclude=tiny_dataset.holdings)
        expected = [missing_product(tiny_dataset, c) for c in customers]
        assert idx[:, 0].tolist() == expected
        assert np.isfinite(scores).all()

    def test_scores_are_float32_for_every_product(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        scores = model.score(np.array([0, 5, 20]))
        assert scores.dtype == np.float32
        assert scores.shape == (3, tiny_dataset.n_products)

    def test_excluded_products_are_never_recommended(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        customers = np.arange(tiny_dataset.n_customers)
        k = tiny_dataset.n_products
        idx, scores = model.recommend(customers, k, exclude=tiny_dataset.holdings)
        for row, customer in enumerate(customers):
            held = set(tiny_dataset.holdings[customer].indices.tolist())
            returned = [int(i) for i in idx[row] if i >= 0]
            assert not held & set(returned)
            assert len(returned) == k - len(held)
            assert (idx[row, len(returned) :] == -1).all()
            assert np.isneginf(scores[row, len(returned) :]).all()

    @pytest.mark.parametrize("per_customer", [False, True])
    def test_allowed_mask_is_respected(
        self, model: Recommender, tiny_dataset: Dataset, per_customer: bool
    ) -> None:
        customers = np.array([0, 13])
        allowed = np.zeros(tiny_dataset.n_products, dtype=bool)
        allowed[[2, 4, 6]] = True
        mask = np.tile(allowed, (2, 1)) if per_customer else allowed
        idx, scores = model.recommend(customers, 5, allowed=mask)
        assert set(idx[:, :3].ravel().tolist()) <= {2, 4, 6}
        assert (idx[:, 3:] == -1).all()
        assert np.isneginf(scores[:, 3:]).all()
        assert (np.diff(scores[:, :3], axis=1) <= 0).all()

    def test_pads_when_fewer_than_k_products_exist(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        k = tiny_dataset.n_products + 3
        idx, scores = model.recommend(np.array([1]), k)
        assert idx.shape == (1, k) and scores.shape == (1, k)
        assert sorted(idx[0, : tiny_dataset.n_products].tolist()) == list(
            range(tiny_dataset.n_products)
        )
        assert (idx[0, tiny_dataset.n_products :] == -1).all()

    def test_save_load_gives_identical_scores(
        self, model: Recommender, tiny_dataset: Dataset, tmp_path: Path
    ) -> None:
        path = model.save(tmp_path / "artifact", metrics={"ndcg@10": 0.5})
        loaded = type(model).load(path)
        generic = load_artifact(path)
        customers = np.arange(tiny_dataset.n_customers)
        assert type(generic) is type(model)
        assert loaded.params == model.params
        np.testing.assert_array_equal(loaded.score(customers), model.score(customers))
        np.testing.assert_array_equal(generic.score(customers), model.score(customers))
        before = model.recommend(customers, 3, exclude=tiny_dataset.holdings)
        after = loaded.recommend(customers, 3, exclude=tiny_dataset.holdings)
        np.testing.assert_array_equal(before[0], after[0])
        products = np.arange(tiny_dataset.n_products)
        np.testing.assert_array_equal(
            model.similar_products(products, 3)[0], loaded.similar_products(products, 3)[0]
        )

    def test_cold_customers_are_served_or_refused_clearly(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        # Two newcomers who look like customer 0 (a saver) and customer 12 (an investor).
        rows = np.array([0, 12])
        history = tiny_dataset.interactions[rows]
        features = tiny_dataset.customer_features[rows]
        if not model.cold_inputs:
            with pytest.raises(ColdStartUnsupported):
                model.score_cold(history, features)
            with pytest.raises(ColdStartUnsupported):
                model.recommend_cold(history, features, 3)
            return
        given_history = history if "history" in model.cold_inputs else None
        given_features = features if "features" in model.cold_inputs else None
        scores = model.score_cold(given_history, given_features)
        assert scores.dtype == np.float32 and scores.shape == (2, tiny_dataset.n_products)
        assert np.isfinite(scores).all()
        idx, _ = model.recommend_cold(
            given_history, given_features, 1, exclude=tiny_dataset.holdings[rows]
        )
        assert idx[0, 0] in block_of(0) and idx[1, 0] in block_of(12)

    def test_cold_input_it_cannot_use_is_refused(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        history = tiny_dataset.interactions[[0]]
        features = tiny_dataset.customer_features[[0]]
        if "history" not in model.cold_inputs:
            with pytest.raises(ColdStartUnsupported):
                model.score_cold(history, None)
        if "features" not in model.cold_inputs:
            with pytest.raises(ColdStartUnsupported):
                model.score_cold(None, features)

    def test_similar_products_exclude_the_product_itself(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        products = np.arange(tiny_dataset.n_products)
        idx, scores = model.similar_products(products, tiny_dataset.n_products)
        for product in products:
            assert product not in idx[product].tolist()
        assert (idx[:, -1] == -1).all()
        assert np.isneginf(scores[:, -1]).all()

    def test_unknown_customer_index_is_refused(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        with pytest.raises(IndexError):
            model.score(np.array([tiny_dataset.n_customers]))

    def test_unfitted_model_refuses_to_score(self, model: Recommender) -> None:
        fresh = type(model)(model.params)
        with pytest.raises(NotFittedError):
            fresh.recommend(np.array([0]), 3)

    def test_params_are_strict_and_round_trip_json(self, model: Recommender) -> None:
        params_model = type(model).params_model
        again = params_model.model_validate_json(model.params.model_dump_json())
        assert again == model.params
        with pytest.raises(ValueError):
            params_model.model_validate({"no_such_param": 1})

    def test_exclude_with_wrong_shape_is_refused(
        self, model: Recommender, tiny_dataset: Dataset
    ) -> None:
        with pytest.raises(ValueError):
            model.recommend(np.array([0, 1]), 3, exclude=sp.csr_matrix((3, 2)))
