"""Writing the three tables as CSV or Parquet, in pieces, all or nothing.

Each file is written next to its destination under a hidden temporary name and renamed into
place only after all three are complete, so a failed run leaves earlier files untouched and no
half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from app.synth.bank import Bank, BankStream
from app.synth.formatting import TIMESTAMP, csv_ready

Format = Literal["csv", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "parquet")
TABLES = ("products", "customers", "interactions")
# Unique or continuous columns gain nothing from Parquet dictionary encoding.
_NO_DICTIONARY = {"event_id", "occurred_at", "value", "customer_id", "risk_assessed_at"}


@dataclass(frozen=True)
class WrittenFile:
    """One file a run produced."""

    table: str
    path: Path
    rows: int
    bytes: int


def _prefetched(pieces: Iterable[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """Produce ``pieces`` on a background thread, so drawing the next piece overlaps writing
    this one (numpy and Arrow both release the GIL in their heavy loops)."""
    box: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for piece in pieces:
                while not stop.is_set():
                    try:
                        box.put(("piece", piece), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("done", None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            box.put(("error", error))

    worker = threading.Thread(target=produce, name="synth-producer", daemon=True)
    worker.start()
    try:
        while True:
            kind, payload = box.get()
            if kind == "done":
                return
            if kind == "error":
                assert isinstance(payload, BaseException)
                raise payload
            assert isinstance(payload, pa.Table)
            yield payload
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                box.get(timeout=0.1)
        worker.join()


def _write_csv(path: Path, pieces: Iterable[pa.Table], quoting: str) -> int:
    rows = 0
    writer: pacsv.CSVWriter | None = None
    schema: pa.Schema | None = None
    try:
        for piece in _prefetched(pieces):
            table = csv_ready(piece)
            if writer is None:
                schema = table.schema
                options = pacsv.WriteOptions(quoting_style=quoting)
                writer = pacsv.CSVWriter(str(path), schema, write_options=options)
            writer.write_table(table.cast(schema) if table.schema != schema else table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def _write_parquet(path: Path, pieces: Iterable[pa.Table]) -> int:
    rows = 0
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    try:
        for table in _prefetched(pieces):
            if writer is None:
                schema = table.schema
                dictionary = [n for n in schema.names if n not in _NO_DICTIONARY]
                writer = pq.ParquetWriter(str(path), schema, use_dictionary=dictionary)
            writer.write_table(table.cast(schema) if table.schema != schema else table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def _write_one(path: Path, fmt: Format, pieces: Callable[[], Iterable[pa.Table]]) -> int:
    if fmt == "parquet":
        return _write_parquet(path, pieces())
    try:
        # Unquoted CSV is a third smaller and faster to write and read; Arrow refuses it when
        # a value holds a comma, quote or newline, and then the file is written quoted.
        return _write_csv(path, pieces(), "none")
    except pa.ArrowInvalid as error:
        if "structural characters" not in str(error):
            raise
        return _write_csv(path, pieces(), "needed")


def write_tables(
    out_dir: Path, fmt: Format, tables: dict[str, Callable[[], Iterable[pa.Table]]]
) -> list[WrittenFile]:
    """Write ``out_dir/<name>.<fmt>`` for every entry, all or nothing.

    Each entry returns a fresh iterable of Arrow tables with one schema (it may be called twice
    when a CSV has to be rewritten quoted).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    done: list[tuple[str, Path, Path, int]] = []
    try:
        for name, pieces in tables.items():
            final = out_dir / f"{name}.{fmt}"
            partial = out_dir / f".{name}.{fmt}.partial"
            done.append((name, partial, final, -1))
            rows = _write_one(partial, fmt, pieces)
            done[-1] = (name, partial, final, rows)
        for _, partial, final, _ in done:
            os.replace(partial, final)
    except BaseException:
        for _, partial, _, _ in done:
            partial.unlink(missing_ok=True)
        raise
    return [WrittenFile(n, final, rows, final.stat().st_size) for n, _, final, rows in done]


def write_stream(stream: BankStream, out_dir: Path, fmt: Format = "csv") -> list[WrittenFile]:
    """Write a generated bank without holding its event log in memory."""
    return write_tables(
        out_dir,
        fmt,
        {
            "products": lambda: [stream.products],
            "customers": stream.customers,
            "interactions": stream.interactions,
        },
    )


def _file_form(frame: pd.DataFrame) -> pa.Table:
    """A frame as the Arrow table the stream would have produced (same types, no metadata)."""
    frame = frame.copy()
    if "tags" in frame.columns:
        frame["tags"] = [
            "|".join(tags) if isinstance(tags, list | tuple) else tags for tags in frame["tags"]
        ]
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_large_string(kind):
            kind = pa.string()
        elif pa.types.is_timestamp(kind):
            # Frames hold dates as naive midnights; everything else is a UTC instant.
            kind = pa.date32() if field.name == "launch_date" else TIMESTAMP
        fields.append(pa.field(field.name, kind))
    return table.cast(pa.schema(fields), safe=False)


def write_bank(bank: Bank, out_dir: Path, fmt: Format = "csv") -> list[WrittenFile]:
    """Write the frames of ``bank`` as ``customers``, ``products`` and ``interactions`` files."""

    def pieces(frame: pd.DataFrame) -> Callable[[], Iterable[pa.Table]]:
        return lambda: [_file_form(frame)]

    return write_tables(
        out_dir,
        fmt,
        {
            "products": pieces(bank.products),
            "customers": pieces(bank.customers),
            "interactions": pieces(bank.interactions),
        },
    )
