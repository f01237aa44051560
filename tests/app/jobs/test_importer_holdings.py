"""The per-import holdings accumulator: earliest holding event per pair, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.jobs.importer import holdings
from app.jobs.importer.holdings import HoldingPairs


def _chunk(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    seconds = rng.integers(1_700_000_000, 1_750_000_000, rows)
    return pd.DataFrame(
        {
            "customer_pk": rng.integers(1, 60, rows),
            "product_pk": rng.integers(1, 8, rows),
            "event_type": rng.choice(["view", "purchase", "hold"], rows),
            # Microsecond parts, and an offset: only the instant may count.
            "occurred_at": pd.to_datetime(
                seconds * 1_000_000 + rng.integers(0, 999_999, rows), unit="us", utc=True
            ).tz_convert("Europe/Zurich"),
        }
    )


@pytest.mark.parametrize("floor", [1, 7, 1_000_000])
def test_pairs_match_a_group_by_over_all_rows(monkeypatch: pytest.MonkeyPatch, floor: int) -> None:
    # floor=1 compacts after every chunk, 7 every few, 1,000,000 only at the end.
    monkeypatch.setattr(holdings, "_COMPACT_FLOOR", floor)
    rng = np.random.default_rng(3)
    chunks = [_chunk(rng, int(n)) for n in rng.integers(0, 40, 25)]
    pairs = HoldingPairs(["purchase", "hold"])
    for chunk in chunks:
        pairs.add(chunk)
    every = pd.concat(chunks)
    held = every[every["event_type"].isin(["purchase", "hold"])]
    expected = held.groupby(["customer_pk", "product_pk"])["occurred_at"].min()
    customers, products, since = pairs._compact if len(pairs) else ([], [], [])
    got = {
        (int(c), int(p)): pd.Timestamp(int(t), unit="us", tz="UTC")
        for c, p, t in zip(customers, products, since, strict=True)
    }
    assert got == {key: value.tz_convert("UTC") for key, value in expected.items()}
    assert len(pairs) == len(expected) > 0
    # Sorted by (customer, product): the upsert relies on key order.
    keys = list(zip(customers, products, strict=True))
    assert keys == sorted(keys)


def test_no_holding_types_gathers_nothing() -> None:
    pairs = HoldingPairs([])
    pairs.add(_chunk(np.random.default_rng(1), 30))
    assert len(pairs) == 0
