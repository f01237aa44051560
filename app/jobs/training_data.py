"""Training frames in the import-contract columns, read from the database or from files.

The database read is built for millions of rows: interactions come back as integer keys in
chunks (a server-side cursor on PostgreSQL), timestamps are parsed once per chunk with
vectorised pandas code, and external IDs are attached with one array lookup instead of a join.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from app.services.errors import TrainingDataError

KINDS = ("customers", "products", "interactions")
_SUFFIXES = (".parquet", ".csv", ".csv.gz")
_ID_COLUMNS = {"customer_id": str, "product_id": str, "event_id": str}

RowsCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class TrainingFrames:
    """customers, products and interactions frames in the import-contract columns."""

    customers: pd.DataFrame
    products: pd.DataFrame
    interactions: pd.DataFrame

    def counts(self) -> dict[str, int]:
        return {
            "customers": len(self.customers),
            "products": len(self.products),
            "interactions": len(self.interactions),
        }


# ---- files ---------------------------------------------------------------------------------
def find_contract_file(directory: Path, kind: str) -> Path:
    """``<kind>.parquet``, ``<kind>.csv`` or ``<kind>.csv.gz`` inside ``directory``."""
    for suffix in _SUFFIXES:
        candidate = directory / f"{kind}{suffix}"
        if candidate.is_file():
            return candidate
    names = ", ".join(f"{kind}{s}" for s in _SUFFIXES)
    raise TrainingDataError(f"{directory} holds none of: {names}")


def _read_file(path: Path) -> pd.DataFrame:
    try:
        if path.name.endswith(".parquet"):
            frame = pd.read_parquet(path)
            for column in _ID_COLUMNS:
                if column in frame.columns:
                    frame[column] = frame[column].astype(str)
            return frame
        return pd.read_csv(path, dtype=_ID_COLUMNS, keep_default_na=True)
    except (OSError, ValueError) as exc:
        raise TrainingDataError(f"cannot read {path}: {exc}") from exc


def load_frames_from_files(directory: Path, on_rows: RowsCallback | None = None) -> TrainingFrames:
    """Read the three import-contract files of ``directory`` (Parquet or CSV)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TrainingDataError(f"{directory} is not a directory")
    frames: dict[str, pd.DataFrame] = {}
    for kind in KINDS:
        frames[kind] = _read_file(find_contract_file(directory, kind))
        if on_rows is not None:
            on_rows(kind, len(frames[kind]))
    return TrainingFrames(**frames)


# ---- database ------------------------------------------------------------------------------
def _json_dicts(values: pd.Series) -> list[dict[str, Any]]:
    """JSON columns arrive as dicts/lists (PostgreSQL) or text (SQLite)."""
    out: list[Any] = []
    for value in values.tolist():
        if isinstance(value, str):
            value = json.loads(value)
        out.append(value if value is not None else {})
    return out


def _expand_features(frame: pd.DataFrame, reserved: set[str]) -> pd.DataFrame:
    """Spread the ``features`` JSON column back into columns, as the import files had them."""
    records = _json_dicts(frame.pop("features"))
    if not any(records):
        return frame
    extra = pd.DataFrame.from_records(records, index=frame.index)
    extra = extra[[c for c in extra.columns if c not in reserved and c not in frame.columns]]
    for column in extra.columns:
        extra[column] = _booleans(extra[column])
    return pd.concat([frame, extra], axis=1)


def _booleans(values: pd.Series) -> pd.Series:
    """Text "true"/"false" features become booleans, as a CSV reader makes them.

    Without this the same data encodes differently from the database (``digital_active=true``)
    and from files (``digital_active=True``), and the data fingerprints disagree.
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values
    present = values.dropna()
    if present.empty:
        return values
    text = present.astype(str).str.strip().str.lower()
    if not text.isin(["true", "false"]).all():
        return values
    flags = text == "true"
    if len(present) == len(values):
        return flags.astype(bool)
    return values.astype(object).where(values.isna(), flags.reindex(values.index))


def _utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True)
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _read_customers(engine: Engine) -> tuple[pd.DataFrame, np.ndarray]:
    sql = text(
        "SELECT id, customer_id, risk_class, risk_assessed_at, segment, age, income_band, "
        "channel, consent_personalization, features FROM customers ORDER BY id"
    )
    with engine.connect() as conn:
        frame = pd.read_sql(sql, conn)
    keys = frame.pop("id").to_numpy(dtype=np.int64)
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["risk_assessed_at"] = _utc(frame["risk_assessed_at"])
    frame["consent_personalization"] = frame["consent_personalization"].fillna(True).astype(bool)
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype("Int64")
    return _expand_features(frame, set(frame.columns)), keys


def _read_products(engine: Engine) -> tuple[pd.DataFrame, np.ndarray]:
    sql = text(
        "SELECT id, product_id, name, category, risk_level, status, launch_date, tags, features "
        "FROM products ORDER BY id"
    )
    with engine.connect() as conn:
        frame = pd.read_sql(sql, conn)
    keys = frame.pop("id").to_numpy(dtype=np.int64)
    frame["product_id"] = frame["product_id"].astype(str)
    frame["tags"] = [list(t) if isinstance(t, list) else [] for t in _json_dicts(frame["tags"])]
    return _expand_features(frame, set(frame.columns)), keys


def _interaction_chunks(engine: Engine, chunk_rows: int) -> Any:
    # PostgreSQL hands back epoch seconds (a float is far cheaper to move than a datetime);
    # SQLite stores ISO text, which pandas parses vectorised per chunk.
    when = (
        "EXTRACT(EPOCH FROM occurred_at) AS occurred_at"
        if engine.dialect.name == "postgresql"
        else "occurred_at"
    )
    sql = text(f"SELECT customer_pk, product_pk, event_type, {when} FROM interactions")
    with engine.connect().execution_options(stream_results=True) as conn:
        yield from pd.read_sql(sql, conn, chunksize=chunk_rows)


def load_frames_from_db(
    engine: Engine, chunk_rows: int = 200_000, on_rows: RowsCallback | None = None
) -> TrainingFrames:
    """Read customers, products and interactions from the database in import-contract columns."""
    customers, customer_keys = _read_customers(engine)
    if on_rows is not None:
        on_rows("customers", len(customers))
    products, product_keys = _read_products(engine)
    if on_rows is not None:
        on_rows("products", len(products))
    customer_index = pd.Index(customer_keys)
    product_index = pd.Index(product_keys)
    customer_ids = customers["customer_id"].to_numpy()
    product_ids = products["product_id"].to_numpy()
    parts: list[pd.DataFrame] = []
    total = 0
    for chunk in _interaction_chunks(engine, chunk_rows):
        cust = customer_index.get_indexer(chunk["customer_pk"].to_numpy(dtype=np.int64))
        prod = product_index.get_indexer(chunk["product_pk"].to_numpy(dtype=np.int64))
        keep = (cust >= 0) & (prod >= 0)  # rows written between our reads are skipped
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": customer_ids[cust[keep]],
                    "product_id": product_ids[prod[keep]],
                    "event_type": pd.Categorical(chunk["event_type"].to_numpy()[keep]),
                    # .to_numpy() on tz-aware values builds one Timestamp object per row.
                    "occurred_at": _utc(chunk["occurred_at"][keep]).reset_index(drop=True),
                }
            )
        )
        total += int(keep.sum())
        if on_rows is not None:
            on_rows("interactions", total)
    if parts:
        interactions = pd.concat(parts, ignore_index=True)
        interactions["event_type"] = interactions["event_type"].astype(str)
        interactions["occurred_at"] = pd.to_datetime(interactions["occurred_at"], utc=True)
    else:
        interactions = pd.DataFrame(
            {
                "customer_id": pd.Series(dtype=str),
                "product_id": pd.Series(dtype=str),
                "event_type": pd.Series(dtype=str),
                "occurred_at": pd.Series(dtype="datetime64[ns, UTC]"),
            }
        )
    return TrainingFrames(customers=customers, products=products, interactions=interactions)
