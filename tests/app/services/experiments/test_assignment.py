"""Assignment is a pinned hash: golden file, even split, and traffic changes that move nobody."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from app.services.experiments.assignment import (
    BUCKETS,
    Arm,
    ExperimentPlan,
    assign_for_request,
    bucket_of,
    buckets_and_slots,
    slot_bounds,
    traffic_buckets,
)

GOLDEN = Path(__file__).with_name("golden_assignments.csv")


def plan(
    key: str = "exp",
    salt: str = "salt",
    traffic: float = 1.0,
    weights: tuple[float, ...] = (50, 50),
    placements: frozenset[str] = frozenset(),
) -> ExperimentPlan:
    names = ["control", "treatment", "holdout"][: len(weights)]
    roles = names
    arms = tuple(
        Arm(name, role, f"s-{name}", None, None, upper)
        for name, role, upper in zip(names, roles, slot_bounds(weights), strict=True)
    )
    return ExperimentPlan(key, salt, "running", traffic_buckets(traffic), placements, arms)


def test_golden_file_pins_bucket_slot_and_variant() -> None:
    # The golden experiment: salt "golden-2026", traffic 0.8, arms control 50 / treatment 30 /
    # holdout 20 in that order. Changing the hash or the arm layout breaks this test.
    golden = plan("golden", "golden-2026", 0.8, (50, 30, 20))
    with GOLDEN.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200
    for row in rows:
        customer_id = row["customer_id"]
        digest = hashlib.sha256(("golden-2026:" + customer_id).encode("utf-8")).digest()
        assert int(row["bucket"]) == int.from_bytes(digest[:8], "big") % 10_000
        assert int(row["slot"]) == int.from_bytes(digest[8:16], "big") % 10_000
        assigned = golden.assign(customer_id)
        assert (assigned.variant if assigned else "") == row["variant"], customer_id
    assert {r["variant"] for r in rows} == {"", "control", "treatment", "holdout"}


def test_vectorised_hashing_matches_the_scalar_form() -> None:
    ids = [f"c{i}" for i in range(500)] + ["ü", ""]
    buckets, slots = buckets_and_slots("s", ids)
    assert buckets.tolist() == [bucket_of("s", c) for c in ids]
    assert ((slots >= 0) & (slots < BUCKETS)).all()


def test_one_million_ids_split_evenly() -> None:
    ids = [f"customer-{i}" for i in range(1_000_000)]
    _, slots = buckets_and_slots("even-split", ids)
    arms = np.searchsorted(np.asarray(slot_bounds([1, 1])), slots, side="right")
    counts = np.bincount(arms, minlength=2)
    assert counts.sum() == 1_000_000
    assert stats.chisquare(counts).pvalue > 0.001


def test_raising_traffic_moves_nobody() -> None:
    ids = [f"c{i}" for i in range(20_000)]
    before: dict[str, str] = {}
    for traffic in (0.05, 0.1, 0.25, 0.5, 0.77, 1.0):
        current = plan(traffic=traffic, weights=(60, 30, 10))
        now: dict[str, str] = {}
        for customer_id in ids:
            assigned = current.assign(customer_id)
            if assigned is not None:
                now[customer_id] = assigned.variant
        # Everyone enrolled before is still enrolled, in the same arm.
        assert {c: now.get(c) for c in before} == before
        assert abs(len(now) / len(ids) - traffic) < 0.02
        shares = np.bincount([["control", "treatment", "holdout"].index(v) for v in now.values()])
        assert np.allclose(shares / len(now), [0.6, 0.3, 0.1], atol=0.03)
        before = now
    assert len(before) == len(ids)


def test_request_assignment_follows_placements_and_start_order() -> None:
    home = plan("home-test", "a", placements=frozenset({"home"}))
    everywhere = plan("all", "b", traffic=1.0)
    half = plan("half", "c", traffic=0.5)
    assert assign_for_request("c1", "home", ()) is None
    first = assign_for_request("c1", "home", (home, everywhere))
    assert first is not None and first.experiment == "home-test"
    other = assign_for_request("c1", "offers", (home, everywhere))
    assert other is not None and other.experiment == "all"
    assert assign_for_request("c1", None, (home,)) is None
    outside = [c for c in (f"c{i}" for i in range(100)) if half.assign(c) is None]
    assert outside and all(assign_for_request(c, None, (half,)) is None for c in outside)


@pytest.mark.parametrize("weights", [(), (1, 0), (1, -2)])
def test_slot_bounds_refuses_bad_weights(weights: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        slot_bounds(weights)


def test_slot_bounds_follow_cumulative_weights() -> None:
    assert slot_bounds([50, 30, 20]) == (5000, 8000, 10000)
    assert slot_bounds([1, 2]) == (3333, 10000)
    assert traffic_buckets(0.29) == 2900
