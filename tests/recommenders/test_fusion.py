"""Fusion: routing to the members that can serve, beating its members, explanations, artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from recommenders.dataset import Dataset
from recommenders.errors import ColdStartUnsupported
from recommenders.evaluation.metrics import accuracy_at_k
from recommenders.evaluation.splits import Split, time_split
from recommenders.fusion import FusionRecommender
from recommenders.registry import get_algorithm

CUTOFF = pd.Timestamp("2024-06-01", tz="UTC")


def paired_bank() -> tuple[Dataset, Split]:
    """Two blocks of products; inside a block products come in pairs (0,1), (2,3), (4,5).

    Half the customers hold both products of their pair before the cutoff; the others hold the
    first and take up the second afterwards. After the cutoff everyone also takes up their
    block's new product, which nobody had before. Co-occurrence finds the pair partner; only
    attributes can find the new product.
    """
    products, customers, events = [], [], []
    for block, category, tag in (("A", "deposit", "savings"), ("B", "fund", "equity")):
        for j in range(7):
            products.append(
                {
                    "product_id": f"{block}{j}",
                    "name": f"{block}{j}",
                    "category": category,
                    "risk_level": "R1",
                    "tags": f"{tag}|new" if j == 6 else tag,
                }
            )
        for i in range(30):
            cid = f"{block}c{i:02d}"
            customers.append({"customer_id": cid, "segment": block, "risk_class": "C5"})
            first, second = 2 * (i % 3), 2 * (i % 3) + 1
            day = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=i)
            events.append((cid, f"{block}{first}", "hold", day))
            later = day + pd.Timedelta(days=30) if i % 2 == 0 else CUTOFF + pd.Timedelta(days=i)
            events.append((cid, f"{block}{second}", "purchase", later))
            events.append((cid, f"{block}6", "purchase", CUTOFF + pd.Timedelta(days=40 + i)))
    frame = pd.DataFrame(events, columns=["customer_id", "product_id", "event_type", "occurred_at"])
    full = Dataset.from_frames(pd.DataFrame(customers), pd.DataFrame(products), frame)
    split = time_split(full.events, (full.n_customers, full.n_products), cutoff=CUTOFF)
    return full.with_events(split.train), split


@pytest.fixture(scope="module")
def bank() -> tuple[Dataset, Split]:
    return paired_bank()


def _ndcg(model: object, split: Split, k: int = 3) -> float:
    customers = split.test_customers
    recs, _ = model.recommend(customers, k, exclude=split.exclude[customers])  # type: ignore[attr-defined]
    return float(np.nanmean(accuracy_at_k(recs, split.test[customers], k)["ndcg"]))


def test_fusion_beats_each_member_by_routing_new_products_to_content(
    bank: tuple[Dataset, Split],
) -> None:
    train, split = bank
    fusion = FusionRecommender(
        members=["itemknn", "content"], weights={"itemknn": 1.0, "content": 1.0}
    ).fit(train)
    members = {name: get_algorithm(name)().fit(train) for name in ("itemknn", "content")}
    scores = {name: _ndcg(m, split) for name, m in members.items()}
    fused = _ndcg(fusion, split)
    assert fused > max(scores.values()) + 0.1, (fused, scores)


def test_tuned_weights_are_never_worse_than_the_best_member_on_validation(
    bank: tuple[Dataset, Split],
) -> None:
    train, _ = bank
    fusion = FusionRecommender(
        members=["popularity", "itemknn", "content"], rounds=1, validation="random"
    ).fit(train)
    weights = fusion.member_weights()
    assert set(weights) == {"popularity", "itemknn", "content"}
    assert any(w > 0 for w in weights.values())
    assert np.isfinite(fusion.validation_ndcg)
    assert np.isfinite(fusion.validation_coverage)
    assert set(fusion.members) == {n for n, w in weights.items() if w > 0}


def test_explanations_add_up_to_the_fused_score(bank: tuple[Dataset, Split]) -> None:
    train, split = bank
    fusion = FusionRecommender(
        members=["itemknn", "content"], weights={"itemknn": 2.0, "content": 1.0}
    ).fit(train)
    customers = split.test_customers[:5]
    explained = fusion.recommend_explained(customers, 3, exclude=split.exclude[customers])
    indices, scores = fusion.recommend(customers, 3, exclude=split.exclude[customers])
    np.testing.assert_array_equal(explained.indices, indices)
    np.testing.assert_allclose(explained.contributions.sum(axis=2), scores, atol=1e-5)
    assert explained.members == ("itemknn", "content")
    new_product = train.product_ids.to_index(["A6"])[0]
    row, col = np.argwhere(explained.indices == new_product)[0]
    # Nobody held the new product: only the content member can vouch for it.
    assert explained.contributions[row, col, 0] == 0.0
    assert explained.contributions[row, col, 1] > 0.0


def test_unseen_customers_go_to_members_that_can_serve_them(bank: tuple[Dataset, Split]) -> None:
    train, _ = bank
    fusion = FusionRecommender(
        members=["als", "content"], weights={"als": 1.0, "content": 1.0}
    ).fit(train)
    features = train.customer_features[:2]
    scores = fusion.score_cold(None, features)  # ALS needs history; content takes features
    assert scores.shape == (2, train.n_products) and np.isfinite(scores).all()
    only_als = FusionRecommender(members=["als"]).fit(train)
    with pytest.raises(ColdStartUnsupported):
        only_als.score_cold(None, features)


@pytest.mark.parametrize(
    "options", [{"method": "rrf"}, {"normalisation": "zscore"}, {"normalisation": "rank"}]
)
def test_every_blend_option_ranks_and_round_trips(
    bank: tuple[Dataset, Split], tmp_path: Path, options: dict[str, str]
) -> None:
    train, split = bank
    fusion = FusionRecommender(
        members=["popularity", "content"], weights={"popularity": 1.0, "content": 1.0}, **options
    ).fit(train)
    customers = np.arange(train.n_customers)
    loaded = FusionRecommender.load(fusion.save(tmp_path / "fusion"))
    np.testing.assert_array_equal(loaded.score(customers), fusion.score(customers))
    assert loaded.member_weights() == fusion.member_weights()
    assert _ndcg(fusion, split) > 0.0


def test_save_load_gives_identical_lists(bank: tuple[Dataset, Split], tmp_path: Path) -> None:
    train, split = bank
    fusion = FusionRecommender(members=["itemknn", "content", "ease"], rounds=1).fit(train)
    path = fusion.save(tmp_path / "fusion")
    assert (path / "members").is_dir()
    loaded = FusionRecommender.load(path)
    customers = split.test_customers
    a = fusion.recommend(customers, 4, exclude=split.exclude[customers])
    b = loaded.recommend(customers, 4, exclude=split.exclude[customers])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValidationError, match="not a fusion member"):
        FusionRecommender(members=["als"], weights={"content": 1.0})
    with pytest.raises(ValidationError, match="distinct"):
        FusionRecommender(members=["als", "als"])
    with pytest.raises(ValidationError, match="own member"):
        FusionRecommender(members=["fusion"])
