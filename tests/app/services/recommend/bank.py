"""A tiny literal bank for serving tests: frames, database rows and a fitted popularity model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Holding, Product
from app.services import registry
from recommenders.artifacts import save_artifact
from recommenders.dataset import Dataset
from recommenders.popularity import PopularityRecommender

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RECENT = NOW - timedelta(days=30)
EXPIRED = NOW - timedelta(days=365 * 3)

# product_id, name, category, risk_level, status
PRODUCTS = [
    ("P01", "Easy Saver", "deposit", "R1", "active"),
    ("P02", "Fixed Term 12m", "deposit", "R1", "active"),
    ("P03", "Notice Saver", "deposit", "R1", "active"),
    ("P04", "Bond Fund", "fund", "R2", "active"),
    ("P05", "Balanced Fund", "fund", "R3", "active"),
    ("P06", "Equity Fund", "fund", "R4", "active"),
    ("P07", "Emerging Markets", "fund", "R5", "active"),
    ("P08", "Home Insurance", "insurance", "R1", "active"),
    ("P09", "Life Cover", "insurance", "R2", "active"),
    ("P10", "Personal Loan", "loan", "R2", "active"),
    ("P11", "Old Fund", "fund", "R2", "retired"),
    ("P12", "Paused Card", "card", "R1", "suspended"),
]

# customer_id, segment, risk_class, risk_assessed_at, consent
CUSTOMERS = [
    ("C1", "mass", "C1", RECENT, True),
    ("C2", "mass", "C3", RECENT, True),
    ("C3", "affluent", "C5", RECENT, True),
    ("C4", "affluent", "C5", EXPIRED, True),  # expired: R1 only
    ("C5", "mass", None, None, True),  # never assessed: R1 only
    ("C6", "affluent", "C4", RECENT, False),  # no consent
    ("C7", "mass", "C2", RECENT, True),  # in the database, not in the model
]

# customer_id -> products held
HOLDINGS = {
    "C1": ["P01", "P08"],
    "C2": ["P01", "P04", "P05"],
    "C3": ["P05", "P06", "P07", "P11"],
    "C4": ["P06"],
    "C5": ["P02"],
    "C6": ["P04"],
}


def frames(customers: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Import-contract frames; ``customers`` limits who the model sees (default: C1..C6)."""
    keep = customers or ["C1", "C2", "C3", "C4", "C5", "C6"]
    cust = pd.DataFrame(
        [
            {
                "customer_id": c,
                "segment": s,
                "risk_class": r,
                "risk_assessed_at": a,
                "consent_personalization": ok,
            }
            for c, s, r, a, ok in CUSTOMERS
            if c in keep
        ]
    )
    prod = pd.DataFrame(
        [
            {"product_id": p, "name": n, "category": c, "risk_level": r, "status": s}
            for p, n, c, r, s in PRODUCTS
        ]
    )
    rows = [
        {
            "customer_id": c,
            "product_id": p,
            "event_type": "hold",
            "occurred_at": (RECENT - timedelta(days=i)).isoformat(),
        }
        for c, held in HOLDINGS.items()
        if c in keep
        for i, p in enumerate(held)
    ]
    return cust, prod, pd.DataFrame(rows)


def fit_popularity() -> PopularityRecommender:
    model = PopularityRecommender()
    model.fit(Dataset.from_frames(*frames()))
    return model


def seed(session_factory: sessionmaker[Session]) -> None:
    """Insert the literal bank into a migrated database."""
    with session_factory() as session, session.begin():
        products = {}
        for pid, name, category, level, status in PRODUCTS:
            products[pid] = Product(
                product_id=pid,
                name=name,
                category=category,
                risk_level=level,
                status=status,
                tags=[],
                features={},
            )
            session.add(products[pid])
        customers = {}
        for cid, segment, risk, assessed, consent in CUSTOMERS:
            customers[cid] = Customer(
                customer_id=cid,
                segment=segment,
                risk_class=risk,
                risk_assessed_at=assessed,
                consent_personalization=consent,
                features={},
            )
            session.add(customers[cid])
        session.flush()
        for cid, held in HOLDINGS.items():
            for pid in held:
                session.add(
                    Holding(
                        customer_pk=customers[cid].id,
                        product_pk=products[pid].id,
                        source="event",
                        since=RECENT,
                    )
                )


def publish(session_factory: sessionmaker[Session], model: object, directory: Path) -> str:
    """Save, register and activate ``model``; returns the version id."""
    path = save_artifact(model, directory)  # type: ignore[arg-type]
    with session_factory() as session, session.begin():
        row = registry.register_artifact(session, path)
        registry.activate(session, row.version)
        return row.version
