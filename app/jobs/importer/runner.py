"""One import from file to database: inspect, validate chunk by chunk, write, commit or refuse."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, ForeignKeyConstraint, Index

from app.jobs.importer import readers, writers
from app.jobs.importer.contract import CONTRACTS, ImportKind
from app.jobs.importer.errors import InvalidRowsError, SourceError
from app.jobs.importer.prefetch import prefetch
from app.jobs.importer.report import ImportResult, RejectSink
from app.jobs.importer.rules import RuleContext, check
from app.jobs.importer.seen import SeenKeys
from app.settings import Settings

# SQLite page cache for the import connection, fixed so that memory does not grow with the file.
# Larger caches did not make imports faster (rows arrive in event_id order, so the unique index
# grows at its right edge), only the resident memory bigger: 256 MiB cost about 150 MiB more
# peak and no less time than 64 MiB on a 3M-row file.
_SQLITE_IMPORT_CACHE_KIB = 64 * 1024


@dataclass
class ImportOptions:
    """How to treat bad rows and where to report them."""

    skip_invalid: bool = False
    rejects_path: Path | None = None
    progress: Callable[[int], None] | None = None  # called with rows read so far
    report_rows: int = 20


def default_rejects_path(source: Path) -> Path:
    """``data/events.csv`` -> ``data/events.rejects.csv``."""
    return source.with_name(f"{source.stem}.rejects.csv")


def run_import(
    engine: Engine,
    settings: Settings,
    kind: ImportKind,
    path: Path,
    options: ImportOptions | None = None,
) -> ImportResult:
    """Import one file of ``kind``; raise :class:`ImportRefused` when nothing was written.

    Without ``skip_invalid`` any invalid row refuses the whole file; the rows are still all
    validated so the report is complete. Data and the ``import_runs`` row commit together;
    a refused import leaves only an ``import_runs`` row with status ``refused``.
    """
    options = options or ImportOptions()
    started = time.perf_counter()
    result = ImportResult(kind=kind.value, source=str(path), sha256="")
    try:
        info = readers.inspect_source(path)
        result.sha256 = info.sha256
        _check_header(kind, info)
        rejects_path = options.rejects_path
        if rejects_path is None and options.skip_invalid:
            rejects_path = default_rejects_path(path)
        sink = RejectSink(info.columns, rejects_path, keep=options.report_rows)
        sink.reset()
        try:
            try:
                _attempt(engine, settings, kind, info, options, sink, result, malformed=None)
            except readers.MalformedRowsFound:
                # Rare: rows with the wrong number of fields. Rescan for exact row numbers.
                malformed = readers.find_malformed_rows(info)
                sink.reset()
                _attempt(engine, settings, kind, info, options, sink, result, malformed)
        finally:
            sink.close()
    except SourceError as exc:
        result.sha256 = result.sha256 or exc.sha256 or ""
        _record_refused(engine, result, started)
        raise
    except InvalidRowsError:
        _record_refused(engine, result, started)
        raise
    result.seconds = time.perf_counter() - started
    return result


def _check_header(kind: ImportKind, info: readers.SourceInfo) -> None:
    seen: set[str] = set()
    repeated = sorted({c for c in info.columns if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
    if repeated:
        raise SourceError(f"column names appear more than once: {', '.join(repeated)}")
    missing = [c for c in CONTRACTS[kind].required if c not in info.columns]
    if missing:
        raise SourceError(
            f"missing required column(s) for {kind.value}: {', '.join(missing)} "
            f"(found: {', '.join(info.columns) or 'none'})"
        )


def _attempt(
    engine: Engine,
    settings: Settings,
    kind: ImportKind,
    info: readers.SourceInfo,
    options: ImportOptions,
    sink: RejectSink,
    result: ImportResult,
    malformed: list[readers.MalformedRow] | None,
) -> None:
    now = datetime.now(UTC)
    result.rows_read = result.rows_written = result.rows_unchanged = result.rows_rejected = 0
    with engine.connect() as conn:
        restore = _sqlite_import_pragmas(conn)
        try:
            with conn.begin():
                run_id = writers.start_run(conn, result, now)
                if malformed:
                    _reject_malformed(info, malformed, sink, result)
                writer = _load(conn, settings, kind, info, options, sink, result, now, malformed)
                result.rows_rejected = sink.count
                result.first_rejects = list(sink.first)
                result.rejects_path = sink.path if sink.count else None
                if sink.count and not options.skip_invalid:
                    result.status = "refused"
                    raise InvalidRowsError(result)
                if writer is not None:
                    result.holdings_written = _derive_holdings(conn, writer, settings, now)
                result.status = "partial" if sink.count else "succeeded"
                writers.finish_run(conn, run_id, result, datetime.now(UTC))
        finally:
            if restore is not None:
                conn.rollback()
                conn.exec_driver_sql(f"PRAGMA cache_size = {restore[0]}")
                conn.exec_driver_sql(f"PRAGMA foreign_keys = {restore[1]}")
                conn.commit()


def _load(
    conn: Connection,
    settings: Settings,
    kind: ImportKind,
    info: readers.SourceInfo,
    options: ImportOptions,
    sink: RejectSink,
    result: ImportResult,
    now: datetime,
    malformed: list[readers.MalformedRow] | None,
) -> writers.InteractionWriter | None:
    """Validate and write every chunk; returns the interactions writer (interactions only)."""
    ctx = RuleContext(
        latest_allowed=now + timedelta(seconds=settings.max_future_skew_seconds),
        event_types=tuple(settings.event_weights),
    )
    writer: writers.InteractionWriter | None = None
    watermark: int | None = None
    rebuild: list[Index] = []
    constraints: list[ForeignKeyConstraint] = []
    if kind is ImportKind.INTERACTIONS:
        ctx = RuleContext(
            ctx.latest_allowed,
            ctx.event_types,
            customers=writers.load_key_map(conn, "customers"),
            products=writers.load_key_map(conn, "products"),
        )
        watermark = writers.max_interaction_id(conn)
        writer = writers.interaction_writer(conn, watermark, settings.holding_event_types, now)
        if writers.should_rebuild_indexes(info.size_bytes, watermark):
            rebuild = writers.drop_secondary_indexes(conn)
            constraints = writers.drop_foreign_keys(conn)
    updated = _columns_to_update(kind, info.columns)
    # First data row of each key, to catch repeats across chunks (24 bytes a distinct key).
    seen_keys = SeenKeys()
    skip_rows = [m.row for m in malformed] if malformed is not None else None
    checked_chunks = (
        (chunk, check(kind, chunk.frame, chunk.rows, ctx))
        for chunk in readers.iter_chunks(info, settings.import_chunk_rows, skip_rows)
    )
    for chunk, checked in prefetch(checked_chunks):
        result.rows_read += len(chunk.frame)
        bad = checked.problems.bad
        reasons = checked.problems.reasons()
        key = CONTRACTS[kind].key
        if kind is not ImportKind.INTERACTIONS:
            _flag_earlier_keys(checked.clean[key], key, chunk.rows, bad, reasons, seen_keys)
        _reject(sink, chunk, reasons)
        if sink.count and not options.skip_invalid:
            # The file will be refused: keep validating for a complete report, write nothing.
            _report_progress(options, result)
            continue
        good = checked.clean[~bad]
        if kind is ImportKind.CUSTOMERS:
            result.rows_written += writers.upsert_customers(conn, good, now, updated)
        elif kind is ImportKind.PRODUCTS:
            result.rows_written += writers.upsert_products(conn, good, now, updated)
        else:
            assert writer is not None
            outcome = writer.write(good)
            result.rows_written += outcome.inserted
            result.rows_unchanged += int(outcome.already_loaded.sum())
            if outcome.repeated.any():
                positions = np.flatnonzero(~bad)[outcome.repeated]
                repeated_ids = good["event_id"].to_numpy()[outcome.repeated]
                _reject(
                    sink,
                    chunk,
                    {
                        int(p): f"duplicate event_id {e!r} (appears earlier in the file)"
                        for p, e in zip(positions, repeated_ids, strict=True)
                    },
                )
        _report_progress(options, result)
    if kind is not ImportKind.INTERACTIONS:
        result.rows_unchanged = result.rows_read - sink.count - result.rows_written
    if writer is not None:
        writer.close()
    if (rebuild or constraints) and (options.skip_invalid or not sink.count):
        writers.restore_schema(conn, rebuild, constraints)
    return writer


def _derive_holdings(
    conn: Connection, writer: writers.InteractionWriter, settings: Settings, now: datetime
) -> int:
    """SQLite: the writer upserted each chunk's holdings as it went (a GROUP BY over the whole
    new part of the table cost more per row the larger the load), this counts them;
    PostgreSQL: one INSERT … SELECT."""
    if writer.holdings is not None:
        return writer.holdings.finish()
    return writers.derive_holdings(conn, writer.watermark, settings.holding_event_types, now)


def _columns_to_update(kind: ImportKind, header: tuple[str, ...]) -> list[str]:
    """Database columns an upsert may change: those the file carries (extra ones = features)."""
    contract = CONTRACTS[kind]
    columns = [c for c in contract.known if c in header]
    if any(c not in contract.known for c in header):
        columns.append("features")
    return columns


def _flag_earlier_keys(
    keys: pd.Series,
    column: str,
    rows: np.ndarray,
    bad: np.ndarray,
    reasons: dict[int, str],
    seen: SeenKeys,
) -> None:
    """Reject keys already seen in an earlier chunk; remember this chunk's keys.

    Repeats within the chunk were flagged by the rules; keys of rows rejected for other reasons
    still count as seen, so a later repeat names the first row either way.
    """
    positions = np.flatnonzero(keys.notna().to_numpy(dtype=bool))
    values = keys.to_numpy(dtype=object)[positions]
    first = seen.first_rows(values)
    for pos, key, row in zip(
        positions[first > 0].tolist(), values[first > 0], first[first > 0].tolist(), strict=True
    ):
        if not bad[pos]:
            reasons[pos] = f"duplicate {column} {key!r} (first at row {row})"
            bad[pos] = True
    new = first == 0
    once = ~pd.Series(values[new]).duplicated(keep="first").to_numpy(dtype=bool)
    seen.add(values[new][once], rows[positions[new][once]])


def _reject(sink: RejectSink, chunk: readers.Chunk, reasons: dict[int, str]) -> None:
    if not reasons:
        return
    positions = sorted(reasons)
    sink.add(
        chunk.frame.iloc[positions],
        [int(chunk.rows[p]) for p in positions],
        [reasons[p] for p in positions],
    )


def _reject_malformed(
    info: readers.SourceInfo,
    malformed: list[readers.MalformedRow],
    sink: RejectSink,
    result: ImportResult,
) -> None:
    width = len(info.columns)
    padded = [(m.fields + [""] * width)[:width] for m in malformed]
    sink.add(
        pd.DataFrame(padded, columns=list(info.columns)),
        [m.row for m in malformed],
        [f"row has {len(m.fields)} fields; the header has {width}" for m in malformed],
    )
    result.rows_read += len(malformed)


def _report_progress(options: ImportOptions, result: ImportResult) -> None:
    if options.progress is not None:
        options.progress(result.rows_read)


def _sqlite_import_pragmas(conn: Connection) -> tuple[int, int] | None:
    """Bigger page cache; foreign keys unchecked (the rules resolved every key in this same
    transaction, which holds SQLite's only write lock). Returns the values to restore."""
    if conn.dialect.name != "sqlite":
        return None
    cache = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    foreign_keys = int(conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one())
    conn.commit()  # pragmas below are no-ops inside a transaction
    conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_IMPORT_CACHE_KIB}")
    conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
    conn.commit()
    return cache, foreign_keys


def _record_refused(engine: Engine, result: ImportResult, started: float) -> None:
    """Audit a refused import in its own transaction (the data transaction rolled back)."""
    result.status = "refused"
    result.seconds = time.perf_counter() - started
    now = datetime.now(UTC)
    with engine.begin() as conn:
        run_id = writers.start_run(conn, result, now)
        writers.finish_run(conn, run_id, result, now)
