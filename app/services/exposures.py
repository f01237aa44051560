"""The exposure (decision) log: what each response showed and why, written in the background.

Each row is the decision record of one served list (docs/decisions.md): it is only ever
inserted here; nothing in the service updates it, and the retention prune is the only delete.

``record`` is a deque append and never blocks or fails a response. A background task flushes
the buffer in batches through a worker thread; shutdown flushes what is left. When the buffer is
full the oldest rows are dropped and counted (a full buffer means the database has been away for
a while; serving matters more than the log), and a failed flush puts its rows back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC
from typing import Any

import orjson
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Exposure

log = logging.getLogger(__name__)

# ``items`` may be a list or an ``orjson.Fragment`` holding the list already encoded.
ExposureRow = dict[str, Any]
# A row, or a (builder, args) pair built at flush time so the response does not pay for it.
Pending = ExposureRow | tuple[Callable[..., ExposureRow], tuple[Any, ...]]


_COLUMNS = (
    "recommendation_id",
    "customer_id",
    "strategy",
    "model_version",
    "served_from",
    "degraded",
    "channel",
    "placement",
    "experiment",
    "variant",
    "items",
    "served_at",
    "policy_version",
    "basis",
    "risk_class",
    "removed",
)
_JSON_COLUMNS = frozenset({"items", "removed"})


def _insert(session: Session, rows: list[ExposureRow]) -> None:
    """One DBAPI ``executemany``: the log is written at request rate, so skip ORM overhead.

    JSON is encoded with orjson and timestamps are stored as the ``UTCDateTime`` type would
    store them (naive UTC on SQLite, aware on PostgreSQL).
    """
    connection = session.connection()
    dialect = connection.dialect
    sqlite = dialect.name == "sqlite"
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    json_mark = mark if sqlite else f"CAST({mark} AS JSONB)"
    marks = ", ".join(json_mark if c in _JSON_COLUMNS else mark for c in _COLUMNS)
    sql = f"INSERT INTO {Exposure.__tablename__} ({', '.join(_COLUMNS)}) VALUES ({marks})"
    params = []
    for row in rows:
        served_at = row["served_at"].astimezone(UTC)
        params.append(
            (
                row["recommendation_id"],
                row["customer_id"],
                row["strategy"],
                row["model_version"],
                row["served_from"],
                bool(row["degraded"]),
                row["channel"],
                row["placement"],
                row["experiment"],
                row["variant"],
                orjson.dumps(row["items"]).decode(),
                # SQLite: SQLAlchemy's text form, microseconds always written, so times compare
                # as text exactly as the ORM's own (sqlite3 would drop ".000000").
                served_at.replace(tzinfo=None).isoformat(" ", "microseconds")
                if sqlite
                else served_at,
                # Rows queued by an older builder lack the decision-record fields.
                row.get("policy_version"),
                row.get("basis"),
                row.get("risk_class"),
                orjson.dumps(row.get("removed", ())).decode(),
            )
        )
    connection.exec_driver_sql(sql, params)


def _materialise(item: Pending) -> ExposureRow:
    if isinstance(item, dict):
        return item
    build, args = item
    return build(*args)


def write_rows(session_factory: sessionmaker[Session], rows: list[ExposureRow]) -> int:
    """Insert ``rows`` in one transaction; returns how many the database refused.

    When the batch is refused for its content (a unique-key clash with rows a previous writer
    committed before it could acknowledge them, or a value the database cannot store), the rows
    are inserted one by one and only the refused ones are left out: one bad row must not block
    the log behind it forever. Errors of availability (connection lost, database locked)
    propagate, so the caller keeps the rows and retries.
    """
    try:
        with session_factory() as session, session.begin():
            _insert(session, rows)
        return 0
    except (IntegrityError, DataError):
        pass
    refused = 0
    for row in rows:
        try:
            with session_factory() as session, session.begin():
                _insert(session, [row])
        except (IntegrityError, DataError) as exc:
            refused += 1
            # The error's class only: its text would carry the row's values (customer ids).
            log.warning("exposure row refused by the database: %s", type(exc.orig).__name__)
    return refused


class ExposureLog:
    """Buffered writer of ``exposures`` rows (one per recommendation response)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session] | None,
        *,
        max_buffer: int = 50_000,
        batch_rows: int = 1_000,
        flush_seconds: float = 1.0,
    ) -> None:
        self._session_factory = session_factory
        self._buffer: deque[Pending] = deque()
        self._max_buffer = max_buffer
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self._flush_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.written = 0
        self.failed_flushes = 0
        self.refused = 0  # rows the database would never take (counted, then left out)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def record(self, row: ExposureRow) -> None:
        """Queue one row; O(1), never raises for a full buffer (the oldest row is dropped)."""
        self._push(row)

    def record_later(self, build: Callable[..., ExposureRow], *args: Any) -> None:
        """Queue ``build(*args)``, called by the flusher: the hot path only appends a tuple."""
        self._push((build, args))

    def _push(self, row: Pending) -> None:
        buffer = self._buffer
        if len(buffer) >= self._max_buffer:
            with contextlib.suppress(IndexError):
                buffer.popleft()
                self.dropped += 1
        buffer.append(row)

    def flush(self) -> int:
        """Write everything queued now (in batches); returns rows written. Thread-safe."""
        if self._session_factory is None:
            return 0
        written = 0
        with self._flush_lock:
            while self._buffer:
                batch: list[Pending] = []
                with contextlib.suppress(IndexError):
                    while len(batch) < self._batch_rows:
                        batch.append(self._buffer.popleft())
                if not batch:
                    break
                rows = [_materialise(item) for item in batch]
                batch = list(rows)  # keep built rows if they have to go back in the buffer
                try:
                    refused = write_rows(self._session_factory, rows)
                except (SQLAlchemyError, OSError) as exc:
                    self.failed_flushes += 1
                    room = max(self._max_buffer - len(self._buffer), 0)
                    self._buffer.extendleft(reversed(batch[:room]))
                    self.dropped += len(batch) - min(room, len(batch))
                    log.warning("exposure flush failed; will retry: %s", exc)
                    break
                self.refused += refused
                written += len(batch) - refused
        self.written += written
        return written

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            if self._buffer:
                try:
                    await asyncio.to_thread(self.flush)
                except Exception:  # the loop must survive anything a flush throws
                    log.exception("exposure flush crashed")

    def start(self) -> None:
        """Start the background flusher on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the flusher and write what is left (called on shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.flush)
