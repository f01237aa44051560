"""The event log: time order and range, volumes, funnel and product/customer lifecycles."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.synth import Bank
from tests.app.synth.conftest import END, SMALL


def test_events_are_time_ordered_within_the_window(bank: Bank) -> None:
    when = bank.interactions["occurred_at"]
    assert when.is_monotonic_increasing
    assert when.min() >= pd.Timestamp(SMALL.start_date, tz="UTC")
    assert when.max() < pd.Timestamp(END, tz="UTC")
    # The log spans the whole window, not a corner of it.
    assert when.max() - when.min() > pd.Timedelta(days=30 * SMALL.months - 10)


def test_event_ids_are_unique_and_follow_time_order(bank: Bank) -> None:
    ids = bank.interactions["event_id"]
    assert ids.is_unique
    assert ids.is_monotonic_increasing


def test_about_twenty_events_per_customer_with_a_funnel(larger_bank: Bank) -> None:
    i = larger_bank.interactions
    per_customer = len(i) / len(larger_bank.customers)
    assert 17 < per_customer < 23
    counts = i["event_type"].value_counts()
    assert counts["view"] > counts["click"] > counts["apply"] > counts["purchase"]
    assert counts["hold"] > 0


def test_funnel_steps_follow_a_view(larger_bank: Bank) -> None:
    i = larger_bank.interactions
    first = i.groupby(["customer_id", "product_id", "event_type"])["occurred_at"].min().unstack()
    purchased = first["purchase"].notna() & first["hold"].isna()
    assert (first.loc[purchased, "view"] <= first.loc[purchased, "purchase"]).all()
    clicked = first["click"].notna()
    assert (first.loc[clicked, "view"] <= first.loc[clicked, "click"]).all()


def test_channel_mix_leans_on_digital(larger_bank: Bank) -> None:
    share = larger_bank.interactions["channel"].value_counts(normalize=True)
    assert share["app"] > share["branch"] > 0.05
    assert share["call_center"] > 0.02


def test_products_appear_only_while_available(larger_bank: Bank) -> None:
    i, p = larger_bank.interactions, larger_bank.products
    counts = i["product_id"].value_counts().reindex(p["product_id"], fill_value=0)
    assert (counts[p.loc[p["status"] == "draft", "product_id"]] == 0).all()
    first_seen = i.groupby("product_id")["occurred_at"].min()
    launched = p.set_index("product_id")["launch_date"].dt.tz_localize("UTC")
    assert (first_seen >= launched[first_seen.index]).all()
    # Products launched in the last weeks are cold: far fewer events than a typical product.
    end = pd.Timestamp(END)
    cold = p.loc[(p["status"] == "active") & (p["launch_date"] > end - pd.Timedelta(days=60))]
    assert len(cold) > 0
    assert counts[cold["product_id"]].max() < counts.median()
    # Withdrawn products stop appearing before the end of the log.
    withdrawn = p.loc[p["status"].isin(["retired", "suspended"]), "product_id"]
    last_seen = i.groupby("product_id")["occurred_at"].max()
    assert (last_seen[withdrawn[withdrawn.isin(last_seen.index)]] < pd.Timestamp(END, tz="UTC")
            - pd.Timedelta(days=6)).all()  # fmt: skip


def test_lifecycle_shapes_activity(larger_bank: Bank) -> None:
    i, c = larger_bank.interactions, larger_bank.customers
    stage = pd.Series(larger_bank.truth.lifecycle, index=c["customer_id"])
    per_customer = i.groupby("customer_id").size().reindex(c["customer_id"], fill_value=0)
    mean = per_customer.groupby(stage).mean()
    assert mean["new"] < mean["dormant"] < mean["active"]
    last = i.groupby("customer_id")["occurred_at"].max()
    dormant = stage.index[stage == "dormant"].intersection(last.index)
    assert (last[dormant] < pd.Timestamp(END, tz="UTC") - pd.Timedelta(days=120)).all()
    # New customers joined recently and have no events before they joined.
    first = i.groupby("customer_id")["occurred_at"].min()
    new = stage.index[stage == "new"].intersection(first.index)
    tenure = c.set_index("customer_id")["tenure_years"]
    joined = pd.Timestamp(END, tz="UTC") - pd.to_timedelta(tenure[new] * 365.25 + 4, unit="D")
    assert (first[new] >= joined).all()
    assert (tenure[stage == "new"] < 0.3).all()


def test_hold_events_open_the_log(bank: Bank) -> None:
    i = bank.interactions
    holds = i.loc[i["event_type"] == "hold", "occurred_at"]
    start = pd.Timestamp(SMALL.start_date, tz="UTC")
    assert ((holds - start) < pd.Timedelta(days=1)).all()
    assert not i[i["event_type"] == "hold"].duplicated(["customer_id", "product_id"]).any()
    assert np.isfinite(i.loc[i["event_type"] == "hold", "value"]).all()
