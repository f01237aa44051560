"""The generated tables follow the import contract and hold consistent values."""

from __future__ import annotations

import pandas as pd

from app.synth import Bank
from tests.app.synth.conftest import END, SMALL

RISK_CLASSES = {"C1", "C2", "C3", "C4", "C5"}
RISK_LEVELS = {"R1", "R2", "R3", "R4", "R5"}


def test_customer_columns_follow_the_contract(bank: Bank) -> None:
    customers = bank.customers
    assert list(customers.columns[:8]) == [
        "customer_id",
        "risk_class",
        "risk_assessed_at",
        "segment",
        "age",
        "income_band",
        "channel",
        "consent_personalization",
    ]
    assert {"tenure_years", "digital_active", "dependants"} <= set(customers.columns)
    assert len(customers) == SMALL.n_customers
    assert customers["customer_id"].is_unique
    assert set(customers["risk_class"].dropna()) <= RISK_CLASSES
    assert set(customers["channel"]) <= {"app", "web", "branch", "call_center"}
    assert customers["consent_personalization"].dtype == bool
    assert str(customers["risk_assessed_at"].dt.tz) == "UTC"
    assert customers["age"].between(18, 90).all()


def test_customer_attributes_are_consistent(bank: Bank) -> None:
    c = bank.customers
    assert (c.loc[c["segment"] == "young", "age"] < 30).all()
    assert (c.loc[c["segment"] == "senior", "age"] >= 65).all()
    assert (c.loc[c["segment"] == "private", "income_band"].isin(["100-250k", "250k+"])).all()
    # Missing class and missing assessment date go together.
    assert (c["risk_class"].isna() == c["risk_assessed_at"].isna()).all()
    assessed = c["risk_assessed_at"].dropna()
    end = pd.Timestamp(END, tz="UTC")
    assert (assessed < end).all()
    expired = assessed < end - pd.DateOffset(months=24)
    assert 0.05 < expired.mean() < 0.3
    assert 0 < c["risk_class"].isna().sum() < 0.15 * len(c)
    assert 0 < (~c["consent_personalization"]).sum() < 0.1 * len(c)
    # Older customers are more cautious on average.
    risk = c["risk_class"].dropna().str[1].astype(int)
    ages = c.loc[risk.index, "age"]
    assert risk[ages >= 65].mean() < risk[ages < 40].mean()


def test_products_follow_the_contract(bank: Bank) -> None:
    p = bank.products
    assert list(p.columns[:7]) == [
        "product_id",
        "name",
        "category",
        "risk_level",
        "status",
        "launch_date",
        "tags",
    ]
    assert 60 <= len(p) <= 150
    assert p["product_id"].is_unique and p["name"].is_unique
    assert set(p["risk_level"]) <= RISK_LEVELS
    assert {"deposit", "wealth", "fund", "insurance", "loan", "card"} <= set(p["category"])
    assert all(isinstance(tags, list) and tags for tags in p["tags"])
    counts = p["status"].value_counts()
    assert counts["active"] > 0.8 * len(p)
    assert {"draft", "suspended", "retired"} <= set(counts.index)


def test_product_risk_follows_category(bank: Bank) -> None:
    p = bank.products
    level = p["risk_level"].str[1].astype(int)
    by_category = level.groupby(p["category"])
    assert by_category.max()["card"] <= 2
    assert by_category.max()["insurance"] <= 3
    assert by_category.median()["deposit"] == 1
    assert by_category.median()["fund"] >= 3
    assert level[p["name"].str.contains("Equity Fund")].min() >= 4


def test_lifecycle_dates(bank: Bank) -> None:
    p = bank.products
    end = pd.Timestamp(END)
    drafts = p[p["status"] == "draft"]
    assert (drafts["launch_date"] > end).all()
    launched = p[p["status"] != "draft"]
    assert (launched["launch_date"] < end).all()
    recent = launched["launch_date"] > end - pd.Timedelta(days=60)
    assert recent.sum() >= 3


def test_interaction_columns_follow_the_contract(bank: Bank) -> None:
    i = bank.interactions
    assert list(i.columns) == [
        "event_id",
        "customer_id",
        "product_id",
        "event_type",
        "occurred_at",
        "value",
        "channel",
    ]
    assert i["event_id"].is_unique
    assert set(i["event_type"]) == {"view", "click", "apply", "purchase", "hold"}
    assert set(i["customer_id"]) <= set(bank.customers["customer_id"])
    assert set(i["product_id"]) <= set(bank.products["product_id"])
    assert set(i["channel"].dropna()) == {"app", "web", "branch", "call_center"}
    valued = i["event_type"].isin(["purchase", "hold"])
    assert i.loc[valued, "value"].gt(0).all()
    assert i.loc[~valued, "value"].isna().all()
