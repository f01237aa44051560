"""The validation rules of each import kind, applied to one chunk at a time (vectorised)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from app.db.models import PRODUCT_STATUSES, RISK_CLASSES, RISK_LEVELS
from app.jobs.importer import validation as v
from app.jobs.importer.contract import CONTRACTS, MAX_AGE, MIN_AGE, ImportKind

HASHED_EVENT_ID_PREFIX = "h:"


@dataclass(frozen=True)
class KeyMap:
    """External id -> surrogate key, for resolving references of a whole file."""

    external: pd.Index
    pks: np.ndarray

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, int]]) -> KeyMap:
        ids = [p[0] for p in pairs]
        return cls(pd.Index(ids, dtype=object), np.asarray([p[1] for p in pairs], dtype=np.int64))

    def lookup(self, ids: pd.Series) -> np.ndarray:
        """Surrogate keys aligned with ``ids``; -1 where the id is unknown or missing."""
        if len(self.external) == 0 or len(ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        # Look up each distinct id once: a chunk repeats customers often and products constantly.
        values = pa.array(ids, type=pa.string(), from_pandas=True)
        if isinstance(values, pa.ChunkedArray):  # pyarrow-backed columns may arrive chunked
            values = values.combine_chunks()
        encoded = values.dictionary_encode()
        distinct = pd.Index(encoded.dictionary.to_pylist(), dtype=object)
        pos = self.external.get_indexer(distinct)
        distinct_pks = np.append(np.where(pos >= 0, self.pks[np.maximum(pos, 0)], -1), -1)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        found: np.ndarray = distinct_pks[codes]  # code -1 (missing id) picks the trailing -1
        return found


@dataclass(frozen=True)
class RuleContext:
    """What the rules need besides the rows: the clock, the configuration, known keys."""

    latest_allowed: datetime  # now + allowed clock skew
    event_types: tuple[str, ...]
    customers: KeyMap | None = None
    products: KeyMap | None = None


@dataclass
class Checked:
    """A chunk after validation: cleaned columns for every row, and the rules each row broke."""

    clean: pd.DataFrame
    problems: v.Problems


def check(kind: ImportKind, raw: pd.DataFrame, rows: np.ndarray, ctx: RuleContext) -> Checked:
    """Validate and clean one chunk of ``kind``."""
    if kind is ImportKind.CUSTOMERS:
        return _customers(raw, rows, ctx)
    if kind is ImportKind.PRODUCTS:
        return _products(raw, rows)
    return _interactions(raw, rows, ctx)


def _strings(raw: pd.DataFrame, kind: ImportKind, problems: v.Problems) -> dict[str, pd.Series]:
    """Trimmed text of every contract column, with required and length rules applied."""
    contract = CONTRACTS[kind]
    out = {name: v.text(raw, name) for name in contract.known}
    for name in contract.required:
        v.require(problems, out[name], name)
    for name, limit in contract.max_lengths.items():
        v.max_length(problems, out[name], name, limit)
    return out


def _customers(raw: pd.DataFrame, rows: np.ndarray, ctx: RuleContext) -> Checked:
    problems = v.Problems(len(raw))
    s = _strings(raw, ImportKind.CUSTOMERS, problems)
    v.duplicates_in_chunk(problems, s["customer_id"], rows, "customer_id")
    risk_class = s["risk_class"].str.upper()
    v.one_of(problems, risk_class, "risk_class", RISK_CLASSES)
    assessed = (
        v.timestamps(problems, raw["risk_assessed_at"], "risk_assessed_at", ctx.latest_allowed)
        if "risk_assessed_at" in raw.columns
        else pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")
    )
    age = (
        v.integers(problems, raw["age"], "age")
        if "age" in raw.columns
        else pd.Series(pd.NA, index=raw.index, dtype="Int64")
    )
    out_of_range = ((age < MIN_AGE) | (age > MAX_AGE)).fillna(False).to_numpy(dtype=bool)
    problems.add(out_of_range, f"age {{value}} is outside {MIN_AGE}..{MAX_AGE}", age.astype("str"))
    consent = (
        v.booleans(problems, raw["consent_personalization"], "consent_personalization", True)
        if "consent_personalization" in raw.columns
        else pd.Series(True, index=raw.index)
    )
    clean = pd.DataFrame(
        {
            "customer_id": s["customer_id"],
            "segment": s["segment"],
            "age": age,
            "income_band": s["income_band"],
            "risk_class": risk_class,
            "risk_assessed_at": assessed,
            "channel": s["channel"],
            "consent_personalization": consent,
            "features": _features(raw, ImportKind.CUSTOMERS),
        }
    )
    return Checked(clean, problems)


def _products(raw: pd.DataFrame, rows: np.ndarray) -> Checked:
    problems = v.Problems(len(raw))
    s = _strings(raw, ImportKind.PRODUCTS, problems)
    v.duplicates_in_chunk(problems, s["product_id"], rows, "product_id")
    risk_level = s["risk_level"].str.upper()
    v.one_of(problems, risk_level, "risk_level", RISK_LEVELS)
    status = s["status"].str.lower()
    v.one_of(problems, status, "status", PRODUCT_STATUSES)
    launch = (
        v.dates(problems, raw["launch_date"], "launch_date")
        if "launch_date" in raw.columns
        else pd.Series(None, index=raw.index, dtype=object)
    )
    clean = pd.DataFrame(
        {
            "product_id": s["product_id"],
            "name": s["name"],
            "category": s["category"],
            "risk_level": risk_level,
            "status": status.fillna("active"),
            "launch_date": launch,
            "tags": _tags(raw),
            "features": _features(raw, ImportKind.PRODUCTS),
        }
    )
    return Checked(clean, problems)


def _interactions(raw: pd.DataFrame, rows: np.ndarray, ctx: RuleContext) -> Checked:
    assert ctx.customers is not None and ctx.products is not None
    problems = v.Problems(len(raw))
    s = _strings(raw, ImportKind.INTERACTIONS, problems)
    event_type = s["event_type"].str.lower()
    v.one_of(problems, event_type, "event_type", list(ctx.event_types))
    occurred = v.timestamps(problems, raw["occurred_at"], "occurred_at", ctx.latest_allowed)
    value = (
        v.floats(problems, raw["value"], "value")
        if "value" in raw.columns
        else pd.Series(np.nan, index=raw.index, dtype="float64")
    )
    customer_pk = ctx.customers.lookup(s["customer_id"])
    product_pk = ctx.products.lookup(s["product_id"])
    problems.add(
        (customer_pk < 0) & s["customer_id"].notna().to_numpy(dtype=bool),
        "unknown customer_id {value} (import customers first)",
        s["customer_id"],
    )
    problems.add(
        (product_pk < 0) & s["product_id"].notna().to_numpy(dtype=bool),
        "unknown product_id {value} (import products first)",
        s["product_id"],
    )
    event_id = s["event_id"]
    needs_hash = (event_id.isna().to_numpy(dtype=bool)) & ~problems.bad
    if needs_hash.any():
        hashed = content_event_ids(
            s["customer_id"][needs_hash],
            s["product_id"][needs_hash],
            event_type[needs_hash],
            occurred[needs_hash],
            value[needs_hash],
            s["channel"][needs_hash],
        )
        event_id = event_id.copy()
        event_id[needs_hash] = hashed
    v.duplicates_in_chunk(problems, event_id, rows, "event_id")
    clean = pd.DataFrame(
        {
            "event_id": event_id,
            "customer_pk": customer_pk,
            "product_pk": product_pk,
            "event_type": event_type,
            "value": value,
            "occurred_at": occurred,
            "channel": s["channel"],
            "recommendation_id": s["recommendation_id"],
        }
    )
    return Checked(clean, problems)


def content_event_ids(
    customer_id: pd.Series,
    product_id: pd.Series,
    event_type: pd.Series,
    occurred_at: pd.Series,
    value: pd.Series,
    channel: pd.Series,
) -> list[str]:
    """Deterministic event ids for rows without one: a hash of what the event says.

    The canonical text joins customer_id, product_id, event_type, the UTC time with microseconds,
    the value's shortest decimal form (empty when missing) and channel with the unit separator.
    """
    parts = [
        pa.array(customer_id, type=pa.string(), from_pandas=True),
        pa.array(product_id, type=pa.string(), from_pandas=True),
        pa.array(event_type, type=pa.string(), from_pandas=True),
        pc.cast(pa.array(occurred_at), pa.string()),
        pc.cast(pa.array(value, type=pa.float64(), from_pandas=True), pa.string()),
        pa.array(channel, type=pa.string(), from_pandas=True),
    ]
    joined = pc.binary_join_element_wise(
        *parts, "\x1f", null_handling="replace", null_replacement=""
    )
    return [
        HASHED_EVENT_ID_PREFIX + hashlib.blake2b(b, digest_size=16).hexdigest()
        for b in joined.cast(pa.binary()).to_pylist()
    ]


def _tags(raw: pd.DataFrame) -> pd.Series:
    if "tags" not in raw.columns:
        return pd.Series([[] for _ in range(len(raw))], index=raw.index, dtype=object)
    column = raw["tags"]

    def split(value: Any) -> list[str]:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return []
        items = value.split("|") if isinstance(value, str) else list(value)
        return [str(item).strip() for item in items if str(item).strip()]

    return column.astype(object).map(split)


def _features(raw: pd.DataFrame, kind: ImportKind) -> pd.Series:
    """Columns outside the contract, per row, as {name: number or text} without blanks."""
    extra = [c for c in raw.columns if c not in CONTRACTS[kind].known]
    if not extra:
        return pd.Series([{} for _ in range(len(raw))], index=raw.index, dtype=object)
    columns: dict[str, list[Any]] = {}
    for name in extra:
        column = raw[name]
        if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            values = column.astype(object).where(column.notna(), None)
        else:
            strings = v.text(raw, name)
            numbers = pd.to_numeric(strings, errors="coerce")
            values = numbers.astype(object).where(numbers.notna(), strings.astype(object))
            values = values.where(strings.notna(), None)
        columns[name] = [_plain(x) for x in values.tolist()]
    records = [
        {k: val for k, val in zip(extra, vals, strict=True) if val is not None}
        for vals in zip(*(columns[n] for n in extra), strict=True)
    ]
    return pd.Series(records, index=raw.index, dtype=object)


def _plain(value: Any) -> Any:
    """JSON-friendly scalars: whole floats become ints, numpy scalars become Python ones."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not np.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    return value
