"""Writing validated rows: upserts for customers and products, bulk loads for interactions.

Everything here runs on one connection inside the import's single transaction; the caller
commits or rolls back.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import (
    Connection,
    ForeignKeyConstraint,
    Index,
    Table,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import AddConstraint, DropConstraint

from app.db.base import UTCDateTime
from app.db.models import Customer, Holding, ImportRun, Interaction, Product
from app.jobs.importer.holdings import SQLiteHoldings
from app.jobs.importer.report import ImportResult
from app.jobs.importer.rules import KeyMap

# Core tables, typed as such (the ORM declares ``__table__`` as a plain FromClause).
CUSTOMERS = cast(Table, Customer.__table__)
PRODUCTS = cast(Table, Product.__table__)
INTERACTIONS = cast(Table, Interaction.__table__)
HOLDINGS = cast(Table, Holding.__table__)
IMPORT_RUNS = cast(Table, ImportRun.__table__)

_INTERACTION_COLUMNS = (
    "event_id",
    "customer_pk",
    "product_pk",
    "event_type",
    "value",
    "occurred_at",
    "channel",
    "recommendation_id",
)
_LOOKUP_BATCH = 5_000


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT on both SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (None for every kind of missing)."""
    columns: dict[str, list[Any]] = {}
    for name in frame.columns:
        series = frame[name]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            values: list[Any] = [None if pd.isna(x) else x.to_pydatetime() for x in series]
        elif pd.api.types.is_bool_dtype(series.dtype):
            values = [bool(x) for x in series.tolist()]
        elif series.dtype == object:
            values = [None if _missing(x) else x for x in series.tolist()]
        else:
            obj = series.astype(object)
            values = obj.where(series.notna(), None).tolist()
        columns[name] = values
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _missing(value: Any) -> bool:
    if value is None or isinstance(value, (list, dict, str)):
        return value is None
    return bool(pd.isna(value))


def upsert(
    conn: Connection,
    table: Table,
    key: str,
    frame: pd.DataFrame,
    now: datetime,
    update_columns: Sequence[str],
) -> int:
    """Insert new rows and update changed ones; returns how many rows were inserted or changed.

    Existing rows only take ``update_columns`` (the columns the file actually had), so a file
    without, say, ``status`` or ``consent_personalization`` never resets them to the default.
    """
    if frame.empty:
        return 0
    records = _records(frame)
    for record in records:
        record["created_at"] = now
        record["updated_at"] = now
    stmt = _insert(conn, table)
    changing = [c for c in frame.columns if c != key and c in update_columns]
    if not changing:
        stmt = stmt.on_conflict_do_nothing(index_elements=[key])
    else:
        stmt = stmt.on_conflict_do_update(
            index_elements=[key],
            set_={c: stmt.excluded[c] for c in [*changing, "updated_at"]},
            # Unchanged rows are left alone, so updated_at means "content last changed".
            where=or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in changing)),
        )
    # RETURNING yields exactly the inserted or changed rows on both backends (executemany
    # rowcount is not reliable across drivers).
    return len(conn.execute(stmt.returning(table.c.id), records).all())


def upsert_customers(
    conn: Connection, frame: pd.DataFrame, now: datetime, update_columns: Sequence[str]
) -> int:
    return upsert(conn, CUSTOMERS, "customer_id", frame, now, update_columns)


def upsert_products(
    conn: Connection, frame: pd.DataFrame, now: datetime, update_columns: Sequence[str]
) -> int:
    return upsert(conn, PRODUCTS, "product_id", frame, now, update_columns)


def load_key_map(conn: Connection, kind: str) -> KeyMap:
    """Every known external id of customers or products with its surrogate key."""
    column = "customer_id" if kind == "customers" else "product_id"
    # Straight from the driver: a million Row objects would cost more than the query.
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT {column}, id FROM {kind}")
        return KeyMap.from_pairs(cursor.fetchall())
    finally:
        cursor.close()


# Secondary indexes that a large load drops and rebuilds (a sorted build beats row-by-row
# inserts into random b-tree positions); the unique event_id index stays, ON CONFLICT needs it.
_REBUILT_INDEXES = (
    "ix_interactions_customer_time",
    "ix_interactions_occurred_at",
    "ix_interactions_recommendation_id",
)
_ROWS_PER_BYTE_GUESS = 1 / 100  # interaction rows are 60-120 bytes in CSV; err towards fewer


def should_rebuild_indexes(file_bytes: int, table_rows: int) -> bool:
    """Rebuild when the file probably holds at least as many rows as the table already has."""
    return file_bytes * _ROWS_PER_BYTE_GUESS >= table_rows


def drop_secondary_indexes(conn: Connection) -> list[Index]:
    """Drop the interactions indexes a bulk load rebuilds; returns them for re-creation."""
    dropped = [ix for ix in INTERACTIONS.indexes if ix.name in _REBUILT_INDEXES]
    for index in dropped:
        index.drop(conn)
    return dropped


def drop_foreign_keys(conn: Connection) -> list[ForeignKeyConstraint]:
    """PostgreSQL checks foreign keys with a trigger per row; a large load re-adds them after,
    which validates every row in one join. (SQLite runs the load with foreign_keys off.)"""
    if conn.dialect.name != "postgresql":
        return []
    constraints = sorted(INTERACTIONS.foreign_key_constraints, key=lambda c: str(c.name))
    for constraint in constraints:
        conn.execute(DropConstraint(constraint))
    return constraints


def restore_schema(
    conn: Connection, indexes: list[Index], constraints: list[ForeignKeyConstraint]
) -> None:
    """Re-create what a large load dropped, inside the same transaction."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    for index in indexes:
        index.create(conn)
    for constraint in constraints:
        conn.execute(AddConstraint(constraint))


def max_interaction_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(Interaction.id), 0))).scalar_one())


@dataclass(frozen=True)
class WriteOutcome:
    """Per chunk: rows inserted, and positions already loaded or repeated from earlier chunks."""

    inserted: int
    already_loaded: np.ndarray  # bool mask over the chunk
    repeated: np.ndarray  # bool mask: event_id first seen in an earlier chunk of this file


class InteractionWriter:
    """Bulk-inserts interaction chunks with ON CONFLICT (event_id) DO NOTHING.

    The common case (no conflicts) costs one bulk statement. When some rows conflict, the chunk
    is rolled back to a savepoint, the conflicting event ids are classified against the id
    watermark taken when the import began (already loaded before vs. repeated within this file),
    and only the new rows are inserted.
    """

    def __init__(
        self, conn: Connection, watermark: int, holdings: SQLiteHoldings | None = None
    ) -> None:
        self.conn = conn
        self.watermark = watermark
        # SQLite: holdings upserted per chunk; PostgreSQL derives them after the load.
        self.holdings = holdings

    def write(self, frame: pd.DataFrame) -> WriteOutcome:
        none = np.zeros(len(frame), dtype=bool)
        if frame.empty:
            return WriteOutcome(0, none, none)
        savepoint = self.conn.begin_nested()
        inserted = self._fast_insert(frame)
        if inserted == len(frame):
            savepoint.commit()
            if self.holdings is not None:
                self.holdings.add(frame)
            return WriteOutcome(inserted, none, none)
        savepoint.rollback()
        known = self._existing_ids(frame["event_id"].tolist())
        ids = frame["event_id"].map(known)
        already = (ids <= self.watermark).fillna(False).to_numpy(dtype=bool)
        repeated = (ids > self.watermark).fillna(False).to_numpy(dtype=bool)
        fresh = frame[~(already | repeated)]
        inserted = self._bulk_insert(fresh) if len(fresh) else 0
        # Every fresh row was inserted: within the chunk event ids are unique (the rules
        # reject repeats) and the lookup above found all earlier ones.
        if self.holdings is not None:
            self.holdings.add(fresh)
        return WriteOutcome(inserted, already, repeated)

    def _existing_ids(self, event_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(event_ids), _LOOKUP_BATCH):
            batch = event_ids[start : start + _LOOKUP_BATCH]
            rows = self.conn.execute(
                select(Interaction.event_id, Interaction.id).where(Interaction.event_id.in_(batch))
            )
            found.update({str(e): int(i) for e, i in rows})
        return found

    def _fast_insert(self, frame: pd.DataFrame) -> int:
        """Insert all rows; may raise or return fewer than ``len(frame)`` on any conflict."""
        return self._bulk_insert(frame)

    def _bulk_insert(self, frame: pd.DataFrame) -> int:
        """Insert rows, skipping event ids that already exist; returns rows inserted."""
        raise NotImplementedError

    def close(self) -> None:
        """Release anything the writer created (staging tables)."""


class SQLiteInteractionWriter(InteractionWriter):
    """executemany of one prepared statement on the raw sqlite3 connection."""

    _SQL = (
        f"INSERT INTO interactions ({', '.join(_INTERACTION_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in _INTERACTION_COLUMNS)}) "
        "ON CONFLICT (event_id) DO NOTHING"
    )

    def _bulk_insert(self, frame: pd.DataFrame) -> int:
        # The stored text format of UTCDateTime on SQLite: naive UTC with microseconds.
        when = pc.cast(
            pa.array(frame["occurred_at"].dt.tz_localize(None), type=pa.timestamp("us")),
            pa.string(),
        )
        columns = [
            _pylist(frame["event_id"]),
            frame["customer_pk"].tolist(),
            frame["product_pk"].tolist(),
            _pylist(frame["event_type"]),
            _pylist(frame["value"]),
            when.to_pylist(),
            _pylist(frame["channel"]),
            _pylist(frame["recommendation_id"]),
        ]
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(self._SQL, zip(*columns, strict=True))
            return int(cursor.rowcount)
        finally:
            cursor.close()


class PostgresInteractionWriter(InteractionWriter):
    """COPY each chunk into a temporary staging table, then INSERT … SELECT … ON CONFLICT."""

    _STAGE = "finrec_import_interactions"

    def __init__(self, conn: Connection, watermark: int) -> None:
        super().__init__(conn, watermark)
        self.conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self._STAGE} "
            "(event_id text, customer_pk bigint, product_pk bigint, event_type text, "
            "value double precision, occurred_at timestamptz, channel text, "
            "recommendation_id text) ON COMMIT DROP"
        )

    def _fast_insert(self, frame: pd.DataFrame) -> int:
        # COPY straight into the table; a repeated event_id aborts it and write() falls back.
        try:
            self._copy("interactions", frame)
        except psycopg.errors.UniqueViolation:
            return -1
        return len(frame)

    def _bulk_insert(self, frame: pd.DataFrame) -> int:
        self.conn.exec_driver_sql(f"TRUNCATE {self._STAGE}")
        self._copy(self._STAGE, frame)
        names = ", ".join(_INTERACTION_COLUMNS)
        result = self.conn.exec_driver_sql(
            f"INSERT INTO interactions ({names}) SELECT {names} FROM {self._STAGE} "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        return int(result.rowcount)

    def _copy(self, target: str, frame: pd.DataFrame) -> None:
        table = pa.table(
            {
                "event_id": pa.array(frame["event_id"], type=pa.string(), from_pandas=True),
                "customer_pk": pa.array(frame["customer_pk"], type=pa.int64()),
                "product_pk": pa.array(frame["product_pk"], type=pa.int64()),
                "event_type": pa.array(frame["event_type"], type=pa.string(), from_pandas=True),
                "value": pa.array(frame["value"], type=pa.float64(), from_pandas=True),
                "occurred_at": pa.array(frame["occurred_at"], type=pa.timestamp("us", tz="UTC")),
                "channel": pa.array(frame["channel"], type=pa.string(), from_pandas=True),
                "recommendation_id": pa.array(
                    frame["recommendation_id"], type=pa.string(), from_pandas=True
                ),
            }
        )
        buffer = io.BytesIO()
        # Unquoted empty fields are NULL for COPY … CSV; pyarrow writes nulls exactly so.
        pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
        names = ", ".join(_INTERACTION_COLUMNS)
        raw = self.conn.connection.driver_connection
        with (
            raw.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT csv)") as copy,
        ):
            copy.write(buffer.getbuffer())


def _pylist(series: pd.Series) -> list[Any]:
    """Values with None for missing, as the sqlite3 driver binds them."""
    values: list[Any] = pa.array(series, from_pandas=True).to_pylist()
    return values


def interaction_writer(
    conn: Connection, watermark: int, holding_event_types: Sequence[str], now: datetime
) -> InteractionWriter:
    """The bulk writer for the connection's backend (on SQLite, writing holdings per chunk)."""
    if conn.dialect.name == "postgresql":
        return PostgresInteractionWriter(conn, watermark)
    holdings = SQLiteHoldings(conn, holding_event_types, now)
    return SQLiteInteractionWriter(conn, watermark, holdings)


def derive_holdings(
    conn: Connection, watermark: int, holding_event_types: Sequence[str], now: datetime
) -> int:
    """Insert holdings implied by newly loaded holding events; ``since`` = earliest such event.

    An existing holding only moves its ``since`` earlier; nothing is ever removed here.
    """
    if not holding_event_types:
        return 0
    earliest = func.min(Interaction.occurred_at)
    source = select(
        Interaction.customer_pk,
        Interaction.product_pk,
        literal("event"),
        earliest,
        literal(now, UTCDateTime()),
    ).where(Interaction.id > watermark, Interaction.event_type.in_(list(holding_event_types)))
    source = source.group_by(Interaction.customer_pk, Interaction.product_pk)
    table = HOLDINGS
    stmt = _insert(conn, table).from_select(
        ["customer_pk", "product_pk", "source", "since", "updated_at"], source
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["customer_pk", "product_pk"],
        set_={"since": stmt.excluded.since, "updated_at": stmt.excluded.updated_at},
        where=stmt.excluded.since < table.c.since,
    )
    if conn.dialect.name == "postgresql":
        # Count on the server: the driver's rowcount is unreliable here, and RETURNING every
        # holding to Python would grow memory with the data.
        written = stmt.returning(table.c.customer_pk).cte("written")
        return int(conn.execute(select(func.count()).select_from(written)).scalar_one())
    return max(int(conn.execute(stmt).rowcount), 0)


def start_run(conn: Connection, result: ImportResult, now: datetime) -> int:
    """The audit row, written first so the SQLite transaction is open before any savepoint."""
    stmt = (
        IMPORT_RUNS.insert()
        .values(
            kind=result.kind,
            source=result.source,
            source_sha256=result.sha256,
            started_at=now,
            status="running",
        )
        .returning(ImportRun.id)
    )
    return int(conn.execute(stmt).scalar_one())


def finish_run(conn: Connection, run_id: int, result: ImportResult, now: datetime) -> None:
    conn.execute(
        IMPORT_RUNS.update()
        .where(ImportRun.id == run_id)
        .values(
            finished_at=now,
            rows_read=result.rows_read,
            rows_written=result.rows_written,
            rows_unchanged=result.rows_unchanged,
            rows_rejected=result.rows_rejected,
            status=result.status,
        )
    )
