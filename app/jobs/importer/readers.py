"""Streaming readers: CSV and Parquet files arrive as chunks of rows with their row numbers.

Row numbers are 1-based *data* rows: row 1 is the first record after the header (so, in a CSV
without quoted line breaks or blank lines, row N sits on line N + 1). Blank lines are skipped and
not counted.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from app.jobs.importer.errors import SourceError

_BLOCK = 1 << 20
_CSV_BLOCK_SIZE = 2 << 20  # pyarrow keeps a fixed number of blocks in flight
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class SourceInfo:
    """What a file is before any row is read: format, header and content hash."""

    path: Path
    format: str  # "csv" or "parquet"
    columns: tuple[str, ...]
    sha256: str
    size_bytes: int
    total_rows: int | None  # known up front for Parquet only


@dataclass(frozen=True)
class Chunk:
    """Raw rows as read (strings for CSV, native types for Parquet) and their data-row numbers."""

    frame: pd.DataFrame
    rows: np.ndarray  # int64, 1-based data-row numbers, aligned with frame positions


@dataclass(frozen=True)
class MalformedRow:
    """A CSV record whose field count differs from the header's."""

    row: int
    fields: list[str]


class MalformedRowsFound(Exception):
    """Raised mid-read when the CSV parser skipped a record; the caller rescans and restarts."""


def inspect_source(path: Path) -> SourceInfo:
    """Hash the file, check CSV text is UTF-8 and read the header, without loading rows."""
    if not path.is_file():
        raise SourceError(f"{path} is not a readable file")
    is_parquet = path.suffix.lower() in PARQUET_SUFFIXES
    digest, bad_row = _hash_and_check(path, check_utf8=not is_parquet)
    if bad_row is not None:
        raise SourceError(
            f"{path.name} is not valid UTF-8 text (first bad byte in data row {bad_row}); "
            "re-export it as UTF-8",
            sha256=digest,
        )
    size = path.stat().st_size
    if is_parquet:
        try:
            meta = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{path.name} is not a readable Parquet file: {exc}") from exc
        columns = tuple(meta.schema_arrow.names)
        return SourceInfo(path, "parquet", columns, digest, size, meta.metadata.num_rows)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise SourceError(f"{path.name} is empty: a header row is required", sha256=digest)
    columns = tuple(name.strip() for name in header)
    return SourceInfo(path, "csv", columns, digest, size, None)


def _hash_and_check(path: Path, check_utf8: bool) -> tuple[str, int | None]:
    """sha256 of the bytes and, for text, the data row of the first invalid UTF-8 byte."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    bad_row: int | None = None
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            if not check_utf8 or bad_row is not None:
                continue
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                # Line of the bad byte = newlines before it + 1; the header is line 1.
                bad_row = newlines + block.count(b"\n", 0, max(exc.start, 0))
                continue
            newlines += block.count(b"\n")
        if check_utf8 and bad_row is None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                bad_row = newlines
    return digest.hexdigest(), bad_row


def iter_chunks(
    info: SourceInfo, chunk_rows: int, malformed: Sequence[int] | None = None
) -> Iterator[Chunk]:
    """Yield chunks of about ``chunk_rows`` rows; memory stays bounded by the chunk size.

    ``malformed`` lists the data rows the CSV parser must skip (found by
    :func:`find_malformed_rows`); when it is None and the parser meets one,
    :class:`MalformedRowsFound` is raised so the caller can rescan and restart with exact numbers.
    """
    if info.format == "parquet":
        yield from _iter_parquet(info, chunk_rows)
    else:
        yield from _iter_csv(info, chunk_rows, malformed)


def _iter_parquet(info: SourceInfo, chunk_rows: int) -> Iterator[Chunk]:
    start = 0
    try:
        for batch in pq.ParquetFile(info.path).iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            yield Chunk(frame, np.arange(start + 1, start + len(frame) + 1, dtype=np.int64))
            start += len(frame)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{info.path.name} could not be read: {exc}") from exc


def _iter_csv(
    info: SourceInfo, chunk_rows: int, malformed: Sequence[int] | None
) -> Iterator[Chunk]:
    # A forward-only stream rather than the path: given a random-access file, pyarrow's streaming
    # reader reads ahead of the consumer without bound, so when writing is slower than parsing
    # most of the file ends up in memory. From a stream it keeps a fixed number of blocks in
    # flight (about 110 MiB with 2 MiB blocks, measured), whatever the file size.
    with info.path.open("rb", buffering=0) as handle:
        yield from _iter_csv_stream(_ForwardOnly(handle), info, chunk_rows, malformed)


class _ForwardOnly(io.RawIOBase):
    """A file seen as a plain stream: readable, not seekable."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int | None:
        return self._raw.readinto(buffer)  # type: ignore[attr-defined,no-any-return]


def _iter_csv_stream(
    handle: io.RawIOBase, info: SourceInfo, chunk_rows: int, malformed: Sequence[int] | None
) -> Iterator[Chunk]:
    skipped: list[int] = []

    def on_invalid_row(_row: object) -> str:
        skipped.append(1)
        return "skip"

    reader = pa_csv.open_csv(
        handle,
        read_options=pa_csv.ReadOptions(
            block_size=_CSV_BLOCK_SIZE,
            column_names=list(info.columns),
            skip_rows=1,
        ),
        parse_options=pa_csv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=on_invalid_row
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in info.columns},
            strings_can_be_null=True,
        ),
    )
    known = np.asarray(sorted(malformed or ()), dtype=np.int64)
    # Good rows before the j-th skipped row: s_j - j (j 1-based), for vectorised renumbering.
    good_before_skip = known - np.arange(1, len(known) + 1, dtype=np.int64)
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    good_seen = 0

    def emit() -> Chunk:
        nonlocal good_seen, pending, pending_rows
        table = pa.Table.from_batches(pending)
        ordinals = np.arange(good_seen + 1, good_seen + table.num_rows + 1, dtype=np.int64)
        rows = ordinals + np.searchsorted(good_before_skip, ordinals, side="left")
        good_seen += table.num_rows
        pending, pending_rows = [], 0
        return Chunk(table.to_pandas(), rows)

    try:
        for batch in reader:
            if skipped and malformed is None:
                raise MalformedRowsFound
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= chunk_rows:
                yield emit()
        if skipped and malformed is None:
            raise MalformedRowsFound
    except pa.ArrowInvalid as exc:
        raise SourceError(f"{info.path.name} is not valid CSV: {exc}") from exc
    if pending:
        yield emit()


def find_malformed_rows(info: SourceInfo) -> list[MalformedRow]:
    """Scan a CSV for records whose field count differs from the header's (the slow, exact path)."""
    expected = len(info.columns)
    found: list[MalformedRow] = []
    with info.path.open(encoding="utf-8-sig", newline="") as handle:
        records = csv.reader(handle)
        next(records, None)
        row = 0
        for fields in records:
            if not fields:
                continue  # blank lines are not data rows (the fast parser skips them too)
            row += 1
            if len(fields) != expected:
                found.append(MalformedRow(row, fields))
    return found
