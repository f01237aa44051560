"""The earliest holding event per (customer, product) among the rows an import inserted.

Gathered chunk by chunk as interactions are written, so deriving holdings on SQLite never scans
the interactions table. Memory grows with the distinct (customer, product) pairs held, not with
the file: three int64 numpy arrays (24 bytes a pair) once compacted, plus the not yet compacted
pairs of recent chunks (bounded by the compacted size, see ``add``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

_BATCH = 50_000
# Compact once the pending pairs reach this many, or the compacted set's size if larger: total
# sorting work stays proportional to the final size (each compaction at least doubles the work
# covered) while pending memory never exceeds the compacted set plus this floor.
_COMPACT_FLOOR = 500_000

_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # customer_pk, product_pk, since (µs UTC)


def _earliest(customers: np.ndarray, products: np.ndarray, since: np.ndarray) -> _Arrays:
    """One row per (customer, product), the minimum ``since``; sorted by customer, product."""
    order = np.lexsort((since, products, customers))
    c, p, t = customers[order], products[order], since[order]
    first = np.ones(len(c), dtype=bool)
    first[1:] = (c[1:] != c[:-1]) | (p[1:] != p[:-1])
    return c[first], p[first], t[first]


class HoldingPairs:
    """Accumulates (customer_pk, product_pk) -> earliest holding-event time for one import."""

    def __init__(self, holding_event_types: Sequence[str]) -> None:
        self.types = list(holding_event_types)
        empty = np.zeros(0, dtype=np.int64)
        self._compact: _Arrays = (empty, empty, empty)
        self._pending: list[_Arrays] = []
        self._pending_rows = 0

    def __len__(self) -> int:
        """Distinct pairs gathered so far (compacts first)."""
        self._compaction()
        return len(self._compact[0])

    def add(self, frame: pd.DataFrame) -> None:
        """Take the holding events of a chunk of inserted rows."""
        if not self.types or frame.empty:
            return
        held = frame[frame["event_type"].isin(self.types)]
        if held.empty:
            return
        since = held["occurred_at"].dt.tz_convert(UTC).dt.tz_localize(None)
        pairs = _earliest(
            held["customer_pk"].to_numpy(dtype=np.int64),
            held["product_pk"].to_numpy(dtype=np.int64),
            since.to_numpy(dtype="datetime64[us]").view(np.int64),
        )
        self._pending.append(pairs)
        self._pending_rows += len(pairs[0])
        if self._pending_rows >= max(_COMPACT_FLOOR, len(self._compact[0])):
            self._compaction()

    def _compaction(self) -> None:
        if not self._pending:
            return
        parts = [self._compact, *self._pending]
        self._pending, self._pending_rows = [], 0
        self._compact = _earliest(*(np.concatenate([part[i] for part in parts]) for i in range(3)))

    def upsert_sqlite(self, conn: Connection, now: datetime) -> int:
        """Insert new holdings and move ``since`` earlier on existing ones; returns rows changed.

        (PostgreSQL derives holdings with one INSERT … SELECT instead: see
        ``writers.derive_holdings``.)
        """
        self._compaction()
        customers, products, since = self._compact
        if not len(customers):
            return 0
        stamp = now.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        written = 0
        try:
            # Key order (the arrays are sorted) keeps the holdings b-tree inserts sequential;
            # slices keep the Python objects for the driver few at a time.
            for start in range(0, len(customers), _BATCH):
                end = start + _BATCH
                # The stored text format of UTCDateTime on SQLite (naive UTC, microseconds),
                # which also orders correctly as text for the comparison below.
                text = pc.cast(pa.array(since[start:end], type=pa.timestamp("us")), pa.string())
                cursor.executemany(
                    "INSERT INTO holdings (customer_pk, product_pk, source, since, updated_at) "
                    "VALUES (?, ?, 'event', ?, ?) ON CONFLICT (customer_pk, product_pk) "
                    "DO UPDATE SET since = excluded.since, updated_at = excluded.updated_at "
                    "WHERE excluded.since < holdings.since",
                    zip(
                        customers[start:end].tolist(),
                        products[start:end].tolist(),
                        text.to_pylist(),
                        itertools.repeat(stamp),
                        strict=False,
                    ),
                )
                written += max(int(cursor.rowcount), 0)
            return written
        finally:
            cursor.close()
