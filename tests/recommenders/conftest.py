"""Small literal datasets shared by the recommender tests."""

from __future__ import annotations

import pandas as pd
import pytest

from recommenders.dataset import Dataset, DatasetConfig

# Two blocks of products: savers take 0-2 (deposits), investors take 3-5 (funds).
# Every customer holds two of their block's three products, so each block product is equally
# popular inside its segment. Product 6 is an insurance product nobody has touched (cold).
BLOCK_A = ["P0", "P1", "P2"]
BLOCK_B = ["P3", "P4", "P5"]
PAIRS = [(0, 1), (0, 2), (1, 2)]


def tiny_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    customers = []
    events = []
    day = pd.Timestamp("2024-01-01", tz="UTC")
    for group, block, segment, risk in (
        ("a", BLOCK_A, "mass", "C2"),
        ("b", BLOCK_B, "affluent", "C4"),
    ):
        for i in range(12):
            cid = f"{group}{i:02d}"
            customers.append(
                {
                    "customer_id": cid,
                    "risk_class": risk,
                    "segment": segment,
                    "age": 30 if group == "a" else 50,
                    "income_band": "low" if group == "a" else "high",
                    "risk_assessed_at": day,
                }
            )
            for j in PAIRS[i % 3]:
                events.append(
                    {
                        "customer_id": cid,
                        "product_id": block[j],
                        "event_type": "hold",
                        "occurred_at": day + pd.Timedelta(days=i + j),
                    }
                )
    products = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(7)],
            "name": [f"Product {i}" for i in range(7)],
            "category": ["deposit"] * 3 + ["fund"] * 3 + ["insurance"],
            "risk_level": ["R1", "R1", "R2", "R3", "R4", "R4", "R2"],
            "tags": ["safe|savings"] * 3 + ["growth|equity"] * 3 + ["protection|family"],
        }
    )
    return pd.DataFrame(customers), products, pd.DataFrame(events)


@pytest.fixture(scope="session")
def tiny_dataset() -> Dataset:
    customers, products, interactions = tiny_frames()
    return Dataset.from_frames(customers, products, interactions, DatasetConfig())
