"""Holdings derived on SQLite from the rows an import inserts, written chunk by chunk.

Each chunk's earliest holding event per (customer, product) is upserted as soon as the chunk is
written, so memory depends on the chunk only: no pair set grows with the file, and nothing scans
the interactions table again. (PostgreSQL derives holdings with one INSERT … SELECT after the
load instead: see ``writers.derive_holdings``.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, func, select

from app.db.models import Holding

_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # customer_pk, product_pk, since (µs UTC)

_UPSERT = (
    "INSERT INTO holdings (customer_pk, product_pk, source, since, updated_at) "
    "VALUES (?, ?, 'event', ?, ?) ON CONFLICT (customer_pk, product_pk) "
    "DO UPDATE SET since = excluded.since, updated_at = excluded.updated_at "
    "WHERE excluded.since < holdings.since"
)


def _earliest(customers: np.ndarray, products: np.ndarray, since: np.ndarray) -> _Arrays:
    """One row per (customer, product), the minimum ``since``; sorted by customer, product."""
    order = np.lexsort((since, products, customers))
    c, p, t = customers[order], products[order], since[order]
    first = np.ones(len(c), dtype=bool)
    first[1:] = (c[1:] != c[:-1]) | (p[1:] != p[:-1])
    return c[first], p[first], t[first]


def earliest_pairs(frame: pd.DataFrame, holding_event_types: Sequence[str]) -> _Arrays:
    """The earliest holding event per (customer_pk, product_pk) of one chunk, in key order."""
    held = frame[frame["event_type"].isin(list(holding_event_types))]
    since = held["occurred_at"].dt.tz_convert(UTC).dt.tz_localize(None)
    return _earliest(
        held["customer_pk"].to_numpy(dtype=np.int64),
        held["product_pk"].to_numpy(dtype=np.int64),
        since.to_numpy(dtype="datetime64[us]").view(np.int64),
    )


class SQLiteHoldings:
    """Upserts the holdings of each inserted chunk; counts the holdings changed at the end.

    A new pair is inserted with ``since`` = its earliest event; an existing holding (from an
    earlier import or an earlier chunk) only moves ``since`` earlier. Every row this import
    inserts or moves gets ``updated_at`` = the import's timestamp, which is how ``finish``
    counts each changed pair once, however many chunks touched it.
    """

    def __init__(self, conn: Connection, holding_event_types: Sequence[str], now: datetime) -> None:
        self.conn = conn
        self.types = list(holding_event_types)
        self.now = now
        # The stored text format of UTCDateTime on SQLite (naive UTC, microseconds).
        self._stamp = now.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def add(self, frame: pd.DataFrame) -> None:
        """Upsert the holdings implied by a chunk of inserted rows."""
        if not self.types or frame.empty:
            return
        customers, products, since = earliest_pairs(frame, self.types)
        if not len(customers):
            return
        # Same text format as the stored column, which also orders correctly for the comparison.
        text = pc.cast(pa.array(since, type=pa.timestamp("us")), pa.string())
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            # Key order within the chunk keeps the holdings b-tree inserts local.
            cursor.executemany(
                _UPSERT,
                zip(
                    customers.tolist(),
                    products.tolist(),
                    text.to_pylist(),
                    itertools.repeat(self._stamp),
                    strict=False,
                ),
            )
        finally:
            cursor.close()

    def finish(self) -> int:
        """Holdings this import inserted or moved earlier (each pair counted once)."""
        if not self.types:
            return 0
        count = select(func.count()).where(Holding.updated_at == self.now)
        return int(self.conn.execute(count).scalar_one())
