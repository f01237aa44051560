"""The batch tables: create or find a batch, commit chunks, publish, prune, read rows back.

A chunk's rows and its "done" mark are committed in one transaction, so after a crash a chunk is
either entirely there or not at all, and a rerun skips exactly the chunks that are in. PostgreSQL
rows go through ``COPY`` as text assembled from the chunk's columns with array operations;
SQLite gets one driver ``executemany`` per chunk, fed tuples as it consumes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.db.base import utcnow
from app.db.models import Batch, BatchChunk, PrecomputedRecommendation
from app.jobs.precompute.rows import BatchRows, Row

_COLUMNS = ("batch_id", "customer_id", "rank", "product_id", "score", "reason_codes")
_INSERT = (
    f"INSERT INTO {PrecomputedRecommendation.__tablename__} ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_COLUMNS))})"
)


def ensure_batch(engine: Engine, values: dict[str, Any]) -> Batch:
    """The batch row for ``values["batch_id"]``, created if no shard has created it yet."""
    with engine.begin() as conn:
        found = _get(conn, values["batch_id"])
        if found is not None:
            return found
    try:
        with engine.begin() as conn:
            conn.execute(insert(Batch).values(status="running", is_current=False, **values))
    except IntegrityError:
        pass  # another shard created it at the same moment
    with engine.begin() as conn:
        found = _get(conn, values["batch_id"])
    assert found is not None
    return found


def _get(conn: Connection, batch_id: str) -> Batch | None:
    row = conn.execute(select(Batch).where(Batch.batch_id == batch_id)).first()
    if row is None:
        return None
    return Batch(**dict(row._mapping))


def get_batch(engine: Engine, batch_id: str) -> Batch | None:
    with engine.connect() as conn:
        return _get(conn, batch_id)


def done_chunks(engine: Engine, batch_id: str) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(BatchChunk.chunk_index).where(BatchChunk.batch_id == batch_id)
        ).scalars()
        return set(rows)


def chunk_outcomes(engine: Engine, batch_id: str) -> tuple[dict[str, int], int, int]:
    """``(outcomes, customers, rows)`` summed over every committed chunk of the batch."""
    total: dict[str, int] = {}
    customers = rows = 0
    with engine.connect() as conn:
        for outcome, n_customers, n_rows in conn.execute(
            select(BatchChunk.outcomes, BatchChunk.customers, BatchChunk.rows).where(
                BatchChunk.batch_id == batch_id
            )
        ):
            for key, value in (outcome or {}).items():
                total[key] = total.get(key, 0) + int(value)
            customers += n_customers
            rows += n_rows
    return total, customers, rows


def write_chunk(
    engine: Engine,
    batch_id: str,
    chunk_index: int,
    shard_index: int,
    rows: BatchRows | Sequence[Row],
    customers: int,
    outcomes: dict[str, int],
    seconds: float,
) -> bool:
    """Rows plus the chunk's mark in one transaction; False when the chunk was already in."""
    if not isinstance(rows, BatchRows):
        rows = BatchRows.from_tuples(rows)
    try:
        with engine.begin() as conn:
            if len(rows):
                if conn.dialect.name == "postgresql":
                    _copy_rows(conn, rows)
                else:
                    # The driver's executemany, on tuples made as it reads them: no per-row
                    # dict or ORM work, and no list of every row of the chunk.
                    _insert_rows(conn, rows)
            conn.execute(
                insert(BatchChunk).values(
                    batch_id=batch_id,
                    chunk_index=chunk_index,
                    shard_index=shard_index,
                    customers=customers,
                    rows=len(rows),
                    outcomes=outcomes,
                    seconds=round(seconds, 4),
                    done_at=utcnow(),
                )
            )
    except IntegrityError:
        # Another process ran the same chunk and committed first: its rows are the same rows.
        return False
    return True


def _insert_rows(conn: Connection, rows: BatchRows) -> None:
    cursor: Any = conn.connection.cursor()
    try:
        cursor.executemany(_INSERT, rows.tuples())
    except conn.dialect.dbapi.IntegrityError as exc:  # type: ignore[union-attr]
        # Straight from the driver: wrap it as SQLAlchemy would (see _copy_rows).
        raise IntegrityError(_INSERT, None, exc) from exc
    finally:
        cursor.close()


def _copy_rows(conn: Connection, rows: BatchRows) -> None:
    raw: Any = conn.connection.driver_connection
    sql = f"COPY precomputed_recommendations ({', '.join(_COLUMNS)}) FROM STDIN"
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            try:
                # The COPY text of the whole chunk, built from its columns (no row objects).
                parts = list(rows.copy_text(raw.info.encoding))
            except ValueError:
                for row in rows.tuples():
                    copy.write_row(row)
            else:
                for part in parts:
                    copy.write(part)
    except Exception as exc:
        # COPY talks to the driver directly, so a duplicate arrives unwrapped: wrap it the way
        # SQLAlchemy would, so the caller treats "chunk already written" the same on every backend.
        if getattr(exc, "sqlstate", None) == "23505":
            raise IntegrityError(sql, None, exc) from exc
        raise


def try_complete(engine: Engine, batch_id: str) -> bool:
    """Publish the batch if every chunk is in: complete and current in one transaction.

    The batch row is locked first (PostgreSQL), so shards finishing together publish once.
    """
    with engine.begin() as conn:
        batch = conn.execute(
            select(Batch.status, Batch.chunks_total, Batch.strategy)
            .where(Batch.batch_id == batch_id)
            .with_for_update()
        ).one()
        if batch.status == "complete":
            return True
        done = conn.execute(
            select(func.count()).select_from(BatchChunk).where(BatchChunk.batch_id == batch_id)
        ).scalar_one()
        if done < batch.chunks_total:
            return False
        conn.execute(
            update(Batch)
            .where(Batch.strategy == batch.strategy, Batch.is_current.is_(True))
            .values(is_current=False)
        )
        conn.execute(
            update(Batch)
            .where(Batch.batch_id == batch_id)
            .values(status="complete", is_current=True, completed_at=utcnow())
        )
    return True


def prune(engine: Engine, strategy: str, keep: int, stale_after: timedelta) -> list[str]:
    """Delete complete batches beyond the ``keep`` newest of ``strategy`` (never the current
    one) and unfinished ones untouched for ``stale_after``. Returns the deleted batch ids."""
    with engine.connect() as conn:
        complete = conn.execute(
            select(Batch.batch_id, Batch.is_current)
            .where(Batch.strategy == strategy, Batch.status == "complete")
            .order_by(Batch.completed_at.desc())
        ).all()
        old = [b for i, (b, current) in enumerate(complete) if i >= keep and not current]
        cutoff: datetime = utcnow() - stale_after
        last_chunk = (
            select(func.max(BatchChunk.done_at))
            .where(BatchChunk.batch_id == Batch.batch_id)
            .scalar_subquery()
        )
        stale = conn.execute(
            select(Batch.batch_id).where(
                Batch.strategy == strategy,
                Batch.status == "running",
                func.coalesce(last_chunk, Batch.created_at) < cutoff,
            )
        ).scalars()
        doomed = old + list(stale)
    for batch_id in doomed:
        with engine.begin() as conn:
            conn.execute(
                delete(PrecomputedRecommendation).where(
                    PrecomputedRecommendation.batch_id == batch_id
                )
            )
            conn.execute(delete(BatchChunk).where(BatchChunk.batch_id == batch_id))
            conn.execute(delete(Batch).where(Batch.batch_id == batch_id))
    return doomed


def iter_rows(engine: Engine, batch_id: str, page: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
    """The batch's rows ordered by customer and rank, a page at a time (keyset paging)."""
    table = PrecomputedRecommendation
    after: tuple[str, int] | None = None
    while True:
        query = (
            select(table.customer_id, table.rank, table.product_id, table.score, table.reason_codes)
            .where(table.batch_id == batch_id)
            .order_by(table.customer_id, table.rank)
            .limit(page)
        )
        if after is not None:
            query = query.where(
                (table.customer_id > after[0])
                | ((table.customer_id == after[0]) & (table.rank > after[1]))
            )
        with engine.connect() as conn:
            rows: list[tuple[Any, ...]] = [tuple(r) for r in conn.execute(query)]
        if not rows:
            return
        yield rows
        after = (str(rows[-1][0]), int(rows[-1][1]))
