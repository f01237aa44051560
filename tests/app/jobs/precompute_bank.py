"""A random but seeded bank for precompute tests: a few hundred customers, an ALS model.

Risk classes (some missing or expired), consent, holdings and product statuses are drawn so
every rule of the policy gate is exercised; some customers are unknown to the model (cold start).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Holding, Product
from app.services import registry
from recommenders.artifacts import save_artifact
from recommenders.dataset import Dataset
from recommenders.implicit_models import ALSRecommender

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
CATEGORIES = ("deposit", "fund", "insurance", "loan", "card")


def seed_bank(
    session_factory: sessionmaker[Session],
    n_customers: int = 240,
    n_products: int = 30,
    seed: int = 7,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Insert the bank and return import-contract frames of what the model may see."""
    rng = np.random.default_rng(seed)
    products = pd.DataFrame(
        {
            "product_id": [f"P{i:03d}" for i in range(n_products)],
            "name": [f"Product {i}" for i in range(n_products)],
            "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(n_products)],
            "risk_level": [f"R{1 + i % 5}" for i in range(n_products)],
            "status": ["active" if i % 9 else "suspended" for i in range(n_products)],
        }
    )
    people = []
    for i in range(n_customers):
        declared = None if rng.random() < 0.08 else f"C{rng.integers(1, 6)}"
        days = int(rng.integers(10, 1200))
        people.append(
            {
                "customer_id": f"U{i:05d}",
                "segment": ("mass", "affluent", None)[i % 3],
                "risk_class": declared,
                "risk_assessed_at": AS_OF - timedelta(days=days) if declared else None,
                "consent_personalization": bool(rng.random() > 0.1),
            }
        )
    customers = pd.DataFrame(people)
    taste = rng.integers(0, len(CATEGORIES), size=n_customers)
    held: list[tuple[int, int]] = []
    for c in range(n_customers):
        picks = {
            int(p)
            for p in rng.integers(0, n_products, size=int(rng.integers(1, 6)))
            if rng.random() < 0.7 or int(p) % len(CATEGORIES) == taste[c]
        }
        held += [(c, p) for p in sorted(picks)]
    with session_factory() as session, session.begin():
        session.execute(
            insert(Product),
            [{**r, "tags": [], "features": {}} for r in products.to_dict("records")],
        )
        session.execute(insert(Customer), [{**r, "features": {}} for r in people])
        cpk = dict(session.execute(select(Customer.customer_id, Customer.id)).all())
        ppk = dict(session.execute(select(Product.product_id, Product.id)).all())
        session.execute(
            insert(Holding),
            [
                {
                    "customer_pk": cpk[f"U{c:05d}"],
                    "product_pk": ppk[f"P{p:03d}"],
                    "source": "event",
                    "since": AS_OF - timedelta(days=40),
                }
                for c, p in held
            ],
        )
    # The model never saw every 20th customer (they arrive after training: cold start).
    seen = customers.iloc[[i for i in range(n_customers) if i % 20 != 19]]
    events = pd.DataFrame(
        [
            {
                "customer_id": f"U{c:05d}",
                "product_id": f"P{p:03d}",
                "event_type": "hold",
                "occurred_at": (AS_OF - timedelta(days=40 + p)).isoformat(),
            }
            for c, p in held
            if c % 20 != 19
        ]
    )
    frame = seen.assign(risk_assessed_at=seen["risk_assessed_at"].astype("datetime64[ns, UTC]"))
    return frame, products, events


def publish_als(
    session_factory: sessionmaker[Session],
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    directory: Path,
) -> str:
    """Fit a small ALS model, save, register and activate it; returns the version id."""
    model = ALSRecommender(factors=8, iterations=4, random_state=3)
    model.fit(Dataset.from_frames(*frames))
    path = save_artifact(model, directory)
    with session_factory() as session, session.begin():
        row = registry.register_artifact(session, path)
        registry.activate(session, row.version)
        return row.version
