"""Holdings derived per chunk on SQLite: earliest holding event per pair, whatever the chunking."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select

from app.db.models import Holding
from app.jobs.importer.holdings import SQLiteHoldings, earliest_pairs


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


def _expected(chunks: list[pd.DataFrame]) -> dict[tuple[int, int], pd.Timestamp]:
    every = pd.concat(chunks)
    held = every[every["event_type"].isin(["purchase", "hold"])]
    earliest = held.groupby(["customer_pk", "product_pk"])["occurred_at"].min()
    return {(int(c), int(p)): t.tz_convert("UTC") for (c, p), t in earliest.items()}


def test_earliest_pairs_of_a_chunk_match_a_group_by() -> None:
    chunk = _chunk(np.random.default_rng(5), 400)
    customers, products, since = earliest_pairs(chunk, ["purchase", "hold"])
    got = {
        (int(c), int(p)): pd.Timestamp(int(t), unit="us", tz="UTC")
        for c, p, t in zip(customers, products, since, strict=True)
    }
    assert got == _expected([chunk])
    keys = list(zip(customers, products, strict=True))
    assert keys == sorted(keys)


@pytest.mark.parametrize("seed", [3, 11])
def test_chunk_by_chunk_upserts_keep_the_earliest_and_count_each_pair_once(
    engine: Engine, seed: int
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL derives holdings with one INSERT … SELECT")
    rng = np.random.default_rng(seed)
    chunks = [_chunk(rng, int(n)) for n in rng.integers(0, 40, 25)]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")  # pairs without customer rows
        conn.commit()
        holdings = SQLiteHoldings(conn, ["purchase", "hold"], now)
        for chunk in chunks:
            holdings.add(chunk)
        written = holdings.finish()
        rows = conn.execute(select(Holding.customer_pk, Holding.product_pk, Holding.since))
        got = {(c, p): pd.Timestamp(since) for c, p, since in rows}
        conn.rollback()
    expected = _expected(chunks)
    assert got == expected
    assert written == len(expected) > 0


def test_no_holding_types_writes_nothing(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL derives holdings with one INSERT … SELECT")
    with engine.connect() as conn:
        holdings = SQLiteHoldings(conn, [], datetime(2026, 1, 1, tzinfo=UTC))
        holdings.add(_chunk(np.random.default_rng(1), 30))
        assert holdings.finish() == 0
        assert conn.execute(select(Holding.customer_pk)).first() is None
        conn.rollback()
