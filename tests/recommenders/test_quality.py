"""Every personalised model beats popularity by a clear margin on data with latent groups.

A tiny synthetic bank: customers belong to hidden groups, each group favours its own products
(which share a theme tag), and a few products are popular with everyone. Two products per
customer are held out; a model that learns the groups finds them, popularity cannot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommenders.dataset import Dataset
from recommenders.registry import ALGORITHMS

N_GROUPS, PER_GROUP_PRODUCTS, PER_GROUP_CUSTOMERS = 5, 10, 80
PICKS, HELD_OUT, K = 7, 2, 5


def synthetic_bank(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_products = N_GROUPS * PER_GROUP_PRODUCTS
    product_group = np.repeat(np.arange(N_GROUPS), PER_GROUP_PRODUCTS)
    products = pd.DataFrame(
        {
            "product_id": [f"p{i:03d}" for i in range(n_products)],
            "name": [f"Product {i}" for i in range(n_products)],
            "category": [
                ["deposit", "fund", "insurance", "card", "loan"][i % 5] for i in range(n_products)
            ],
            "risk_level": [f"R{1 + i % 5}" for i in range(n_products)],
            "tags": [f"theme{g}" for g in product_group],
        }
    )
    zipf = 1.0 / np.arange(1, n_products + 1) ** 1.1
    global_pref = rng.permutation(zipf) / zipf.sum()
    in_group = 1.0 / np.arange(1, PER_GROUP_PRODUCTS + 1) ** 0.5
    customers, events = [], []
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for g in range(N_GROUPS):
        pref = 0.25 * global_pref.copy()
        pref[product_group == g] += 0.75 * in_group / in_group.sum()
        pref /= pref.sum()
        for c in range(PER_GROUP_CUSTOMERS):
            cid = f"g{g}c{c:03d}"
            customers.append(
                {
                    "customer_id": cid,
                    "segment": rng.choice(["mass", "affluent"]),
                    "age": int(rng.integers(20, 80)),
                    "risk_class": "C5",
                    "risk_assessed_at": start,
                }
            )
            picks = rng.choice(n_products, size=PICKS, replace=False, p=pref)
            for day, product in enumerate(picks):
                events.append(
                    {
                        "customer_id": cid,
                        "product_id": f"p{product:03d}",
                        "event_type": "purchase",
                        "occurred_at": start + pd.Timedelta(days=int(day)),
                    }
                )
    return pd.DataFrame(customers), products, pd.DataFrame(events)


@pytest.fixture(scope="module")
def split() -> tuple[Dataset, list[set[int]]]:
    full = Dataset.from_frames(*synthetic_bank())
    rng = np.random.default_rng(11)
    events = full.events
    held = np.zeros(len(events), dtype=bool)
    for _, rows in events.groupby("customer").indices.items():
        held[rng.choice(rows, size=HELD_OUT, replace=False)] = True
    truth: list[set[int]] = [set() for _ in range(full.n_customers)]
    for customer, product in events.loc[held, ["customer", "product"]].itertuples(index=False):
        truth[customer].add(int(product))
    return full.with_events(events[~held]), truth


def recall_at_k(name: str, train: Dataset, truth: list[set[int]]) -> float:
    model = ALGORITHMS[name].build_for_contract(train).fit(train)
    customers = np.arange(train.n_customers)
    idx, _ = model.recommend(customers, K, exclude=train.interactions)
    hits = [len(truth[c] & set(idx[c].tolist())) / len(truth[c]) for c in customers]
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def popularity_recall(split: tuple[Dataset, list[set[int]]]) -> float:
    return recall_at_k("popularity", *split)


@pytest.mark.parametrize("name", sorted(set(ALGORITHMS) - {"popularity"}))
def test_clear_margin_over_popularity(
    name: str, split: tuple[Dataset, list[set[int]]], popularity_recall: float
) -> None:
    recall = recall_at_k(name, *split)
    assert recall >= 1.5 * popularity_recall, (
        f"{name} recall@{K} {recall:.3f} vs popularity {popularity_recall:.3f}"
    )
