"""Behaviour a recommender can learn: suitability, collaborative and content signal."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from app.synth import Bank

TAKE_UP = ["apply", "purchase", "hold"]


def _take_ups(bank: Bank) -> pd.DataFrame:
    i = bank.interactions
    return i[i["event_type"].isin(TAKE_UP)]


def _matrix(bank: Bank) -> npt.NDArray[np.float64]:
    """Customers x products, 1 where the customer took the product up."""
    take = _take_ups(bank)
    rows = pd.Index(bank.customers["customer_id"]).get_indexer(take["customer_id"])
    cols = pd.Index(bank.products["product_id"]).get_indexer(take["product_id"])
    matrix = np.zeros((len(bank.customers), len(bank.products)))
    matrix[rows, cols] = 1.0
    return matrix


def test_take_ups_mostly_respect_suitability(larger_bank: Bank) -> None:
    take = _take_ups(larger_bank)
    take = take.merge(larger_bank.customers[["customer_id", "risk_class"]]).merge(
        larger_bank.products[["product_id", "risk_level"]]
    )
    take = take[take["risk_class"].notna()]
    above = take["risk_level"].str[1].astype(int) > take["risk_class"].str[1].astype(int)
    assert above.mean() < 0.03
    # Browsing is freer than buying: customers look at unsuitable products more often.
    views = larger_bank.interactions.query("event_type == 'view'")
    views = views.merge(larger_bank.customers[["customer_id", "risk_class"]]).merge(
        larger_bank.products[["product_id", "risk_level"]]
    )
    views = views[views["risk_class"].notna()]
    viewed_above = views["risk_level"].str[1].astype(int) > views["risk_class"].str[1].astype(int)
    assert viewed_above.mean() > 2 * above.mean()


def test_similar_hidden_tastes_take_up_similar_products(larger_bank: Bank) -> None:
    """Within one segment, customers of the same taste group share more take-ups than
    customers of different groups: signal only collaborative filtering can use."""
    matrix = _matrix(larger_bank)
    group = larger_bank.truth.taste_group
    segment = larger_bank.customers["segment"].to_numpy()
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(matrix), (2, 40_000))
    norms = np.sqrt(matrix[a].sum(1) * matrix[b].sum(1))
    usable = (segment[a] == segment[b]) & (a != b) & (norms > 0)
    cosine = (matrix[a] * matrix[b]).sum(1)[usable] / norms[usable]
    same = (group[a] == group[b])[usable]
    assert cosine[same].mean() > 2 * cosine[~same].mean()


def test_attributes_predict_take_ups(larger_bank: Bank) -> None:
    """Product tags match customer attributes: signal a content-based model can use."""
    matrix = _matrix(larger_bank)
    customers, products = larger_bank.customers, larger_bank.products

    def rate(tag: str, who: npt.NDArray[np.bool_]) -> float:
        tagged = np.array([tag in tags for tags in products["tags"]])
        return float(matrix[who][:, tagged].sum(1).mean())

    segment = customers["segment"].to_numpy()
    assert rate("business", segment == "sme") > 5 * rate("business", segment != "sme")
    assert rate("youth", segment == "young") > 5 * rate("youth", segment == "senior")
    assert rate("senior", segment == "senior") > 3 * rate("senior", segment == "young")
    family = customers["dependants"].to_numpy() > 0
    assert rate("family", family) > 1.5 * rate("family", ~family)
