"""Export a batch for campaign tools: ``customer_id,rank,product_id,score,reason_codes``.

Written to a temporary file beside the target and renamed at the end, so a crash never leaves
a half-written export under the real name. Reason codes are ``|``-separated.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from app.jobs.precompute.store import iter_rows

COLUMNS = ["customer_id", "rank", "product_id", "score", "reason_codes"]
SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("rank", pa.int32()),
        ("product_id", pa.string()),
        ("score", pa.float64()),
        ("reason_codes", pa.string()),
    ]
)
FORMATS = (".csv", ".parquet")


def export_batch(engine: Engine, batch_id: str, target: Path) -> int:
    """Write every row of the batch to ``target`` (format from the suffix); returns rows."""
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"export file must end in .csv or .parquet, not {target.name!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    written = 0
    try:
        if suffix == ".csv":
            with partial.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(COLUMNS)
                for page in iter_rows(engine, batch_id):
                    writer.writerows(page)
                    written += len(page)
        else:
            with pq.ParquetWriter(partial, SCHEMA) as parquet:
                for page in iter_rows(engine, batch_id):
                    columns = list(zip(*page, strict=True))
                    parquet.write_table(pa.Table.from_arrays(columns, schema=SCHEMA))
                    written += len(page)
                if written == 0:
                    parquet.write_table(SCHEMA.empty_table())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return written
