"""The ID boundary: frozen ID maps, the weighted customer x product matrix and feature matrices.

Frames follow the import contract (customers, products, interactions). Inside the library every
customer and product is an integer index into a frozen :class:`IdMap`; external string IDs are
translated only at the edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from recommenders.errors import DatasetError
from recommenders.features import FeatureEncoder

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "apply": 4.0,
    "purchase": 8.0,
    "hold": 8.0,
}
PRODUCT_STATUSES = ("draft", "active", "suspended", "retired")

_CUSTOMER_RESERVED = {"customer_id", "risk_assessed_at", "consent_personalization", "age"}
_CUSTOMER_CATEGORICAL = ["segment", "risk_class", "income_band", "channel"]
_PRODUCT_RESERVED = {"product_id", "name", "status", "launch_date", "tags"}
_PRODUCT_CATEGORICAL = ["category", "risk_level"]


class IdMap:
    """Frozen external (str) <-> internal (int) map; index ``i`` is the ``i``-th external ID."""

    __slots__ = ("_external", "_index")

    def __init__(self, external: Iterable[str] | np.ndarray, *, unique: bool = False) -> None:
        """``unique``: the caller has checked that the IDs (a str array) are unique; they are
        then kept as given (no copy: they may be memory-mapped) and the hash index that
        :meth:`to_index` needs is built on its first call."""
        if unique and isinstance(external, np.ndarray) and external.dtype.kind == "U":
            self._external: np.ndarray = external
            self._index: pd.Index | None = None
            return
        values = np.asarray(list(external) if not isinstance(external, np.ndarray) else external)
        values = values.astype(str) if values.size else np.asarray([], dtype="<U1")
        index = pd.Index(values)
        if not index.is_unique:
            dupes = index[index.duplicated()].unique()[:5].tolist()
            raise DatasetError(f"duplicate IDs: {', '.join(map(str, dupes))}")
        values.flags.writeable = False
        self._external = values
        self._index = index

    @property
    def external(self) -> np.ndarray:
        """External IDs in internal order (read-only)."""
        return self._external

    def __len__(self) -> int:
        return int(self._external.shape[0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self._external, other._external)

    def __hash__(self) -> int:
        return hash(self._external.tobytes())

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)})"

    def to_index(self, external: Iterable[str] | np.ndarray | pd.Series) -> np.ndarray:
        """Internal indices (int32) for external IDs; ``-1`` for IDs not in the map."""
        values = (
            external
            if isinstance(external, np.ndarray | pd.Series)
            else np.asarray(list(external), dtype=object)
        )
        if len(values) == 0:
            return np.empty(0, dtype=np.int32)
        # Look up each distinct ID once: event logs repeat IDs many times over.
        # pd.factorize hashes a pandas column in its own storage (no str copy); missing values
        # get code -1, which picks the trailing -1 ("unknown") appended below.
        codes, uniques = pd.factorize(values)
        if self._index is None:
            self._index = pd.Index(self._external)
        found = self._index.get_indexer(pd.Index(uniques).astype(str))
        out: np.ndarray = np.append(np.asarray(found, dtype=np.int32), np.int32(-1))[codes]
        return out

    def to_external(self, index: np.ndarray | Iterable[int]) -> np.ndarray:
        """External IDs for internal indices (raises IndexError for out-of-range indices)."""
        out: np.ndarray = self._external[np.asarray(index, dtype=np.int64)]
        return out


class DatasetConfig(BaseModel):
    """How raw events become the training matrix. Strict and JSON round-trippable."""

    model_config = ConfigDict(extra="forbid")

    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    holding_event_types: list[str] = Field(default_factory=lambda: ["purchase", "hold"])
    takeup_event_types: list[str] = Field(default_factory=lambda: ["apply", "purchase", "hold"])
    half_life_days: float | None = Field(default=None, gt=0)
    reference_time: datetime | None = None  # decay reference; None = latest event
    risk_assessment_validity_months: int = Field(default=24, ge=1, le=240)
    age_band_edges: list[float] = Field(default_factory=lambda: [25.0, 35.0, 45.0, 55.0, 65.0])
    max_categories: int = Field(default=50, ge=1)
    numeric_bins: int = Field(default=5, ge=2)


def _to_utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True)
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _level(values: pd.Series, prefix: str) -> np.ndarray:
    """``"R3"``/``"C3"``/``3`` -> 3; missing or malformed -> 0."""
    text = values.astype("string").str.strip().str.upper().str.removeprefix(prefix)
    level = pd.to_numeric(text, errors="coerce").fillna(0).to_numpy()
    return np.where((level >= 1) & (level <= 5), level, 0).astype(np.int8)


def _codes(values: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    cat = pd.Categorical(values.astype("string").fillna(pd.NA))
    vocab = tuple(str(v) for v in cat.categories)
    return np.asarray(cat.codes, dtype=np.int32), vocab


def _require(frame: pd.DataFrame, name: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DatasetError(f"{name} frame is missing required column(s): {', '.join(missing)}")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Everything a model needs to fit, by integer index. Build with :meth:`from_frames`."""

    config: DatasetConfig
    customer_ids: IdMap
    product_ids: IdMap
    interactions: sp.csr_matrix  # customers x products, float32, weighted and decayed
    holdings: sp.csr_matrix  # customers x products, float32 1.0 where a holding event exists
    events: pd.DataFrame  # customer, product (int32), event_type, occurred_at (UTC), weight
    customer_encoder: FeatureEncoder
    product_encoder: FeatureEncoder
    customer_features: sp.csr_matrix
    product_features: sp.csr_matrix
    customer_segment: np.ndarray  # int32 code into segment_vocabulary, -1 missing
    segment_vocabulary: tuple[str, ...]
    customer_risk_class: np.ndarray  # int8 1..5, 0 = missing or expired
    customer_consent: np.ndarray  # bool
    product_category: np.ndarray  # int32 code into category_vocabulary, -1 missing
    category_vocabulary: tuple[str, ...]
    product_risk_level: np.ndarray  # int8 1..5 (0 = malformed)
    product_status: np.ndarray  # str, one of PRODUCT_STATUSES
    reference_time: datetime
    window: tuple[datetime, datetime] | None
    fingerprint: str
    dropped_interactions: int = 0

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def customer_feature_names(self) -> tuple[str, ...]:
        return self.customer_encoder.names

    @property
    def product_feature_names(self) -> tuple[str, ...]:
        return self.product_encoder.names

    @classmethod
    def from_frames(
        cls,
        customers: pd.DataFrame,
        products: pd.DataFrame,
        interactions: pd.DataFrame,
        config: DatasetConfig | None = None,
    ) -> Dataset:
        """Build a dataset from import-contract frames.

        ID maps follow the order of ``customers`` and ``products``. Interactions naming unknown
        customers or products, or event types without a weight, are dropped and counted in
        ``dropped_interactions``.
        """
        config = config or DatasetConfig()
        _require(customers, "customers", ["customer_id"])
        _require(products, "products", ["product_id", "category", "risk_level"])
        _require(
            interactions, "interactions", ["customer_id", "product_id", "event_type", "occurred_at"]
        )
        customer_ids = IdMap(customers["customer_id"].astype(str).to_numpy())
        product_ids = IdMap(products["product_id"].astype(str).to_numpy())

        cust_idx = customer_ids.to_index(interactions["customer_id"])
        prod_idx = product_ids.to_index(interactions["product_id"])
        event_type = interactions["event_type"].astype("category")
        known = (
            (cust_idx >= 0)
            & (prod_idx >= 0)
            & (_event_values(event_type, dict.fromkeys(config.event_weights, 1.0)) > 0)
        )
        try:
            occurred = _to_utc(interactions["occurred_at"][known])
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"interactions.occurred_at is not a valid timestamp: {exc}") from exc
        events = pd.DataFrame(
            {
                "customer": cust_idx[known],
                "product": prod_idx[known],
                "event_type": event_type[known]
                .cat.remove_unused_categories()
                .reset_index(drop=True),
                "occurred_at": occurred.reset_index(drop=True),
            }
        )

        reference = cls._reference_time(config, events)
        extra_customer = [
            c
            for c in customers.columns
            if c not in _CUSTOMER_RESERVED and c not in _CUSTOMER_CATEGORICAL
        ]
        cat_c, num_c = _split_kinds(customers, extra_customer)
        customer_encoder = FeatureEncoder.fit(
            customers,
            categorical=_CUSTOMER_CATEGORICAL + cat_c,
            numeric=["age", *num_c],
            fixed_edges={"age": config.age_band_edges},
            max_categories=config.max_categories,
            numeric_bins=config.numeric_bins,
        )
        extra_product = [
            c
            for c in products.columns
            if c not in _PRODUCT_RESERVED and c not in _PRODUCT_CATEGORICAL
        ]
        cat_p, num_p = _split_kinds(products, extra_product)
        product_encoder = FeatureEncoder.fit(
            products,
            categorical=_PRODUCT_CATEGORICAL + cat_p,
            numeric=num_p,
            tag_column="tags",
            max_categories=config.max_categories,
            numeric_bins=config.numeric_bins,
        )

        risk_class = (
            _level(customers["risk_class"], "C")
            if "risk_class" in customers.columns
            else np.zeros(len(customers), dtype=np.int8)
        )
        if "risk_assessed_at" in customers.columns:
            assessed = pd.to_datetime(customers["risk_assessed_at"], utc=True, errors="coerce")
            limit = pd.Timestamp(reference) - pd.DateOffset(
                months=config.risk_assessment_validity_months
            )
            valid = (assessed >= limit).to_numpy(dtype=bool)  # NaT compares False: fail closed
            risk_class = np.where(valid, risk_class, 0).astype(np.int8)
        consent = (
            customers["consent_personalization"].fillna(True).astype(bool).to_numpy()
            if "consent_personalization" in customers.columns
            else np.ones(len(customers), dtype=bool)
        )
        segment = (
            customers["segment"]
            if "segment" in customers.columns
            else pd.Series([None] * len(customers))
        )
        segment_codes, segment_vocab = _codes(segment)
        category_codes, category_vocab = _codes(products["category"])
        status = (
            products["status"].fillna("active").astype(str).to_numpy()
            if "status" in products.columns
            else np.full(len(products), "active")
        )
        bad_status = sorted(set(status.tolist()) - set(PRODUCT_STATUSES))
        if bad_status:
            raise DatasetError(f"unknown product status(es): {', '.join(bad_status)}")

        base = cls(
            config=config,
            customer_ids=customer_ids,
            product_ids=product_ids,
            interactions=sp.csr_matrix((len(customer_ids), len(product_ids)), dtype=np.float32),
            holdings=sp.csr_matrix((len(customer_ids), len(product_ids)), dtype=np.float32),
            events=events.iloc[:0],
            customer_encoder=customer_encoder,
            product_encoder=product_encoder,
            customer_features=customer_encoder.encode(customers),
            product_features=product_encoder.encode(products),
            customer_segment=segment_codes,
            segment_vocabulary=segment_vocab,
            customer_risk_class=risk_class,
            customer_consent=consent,
            product_category=category_codes,
            category_vocabulary=category_vocab,
            product_risk_level=_level(products["risk_level"], "R"),
            product_status=status.astype(str),
            reference_time=reference,
            window=None,
            fingerprint="",
            dropped_interactions=int((~known).sum()),
        )
        return base.with_events(events)

    @staticmethod
    def _reference_time(config: DatasetConfig, events: pd.DataFrame) -> datetime:
        if config.reference_time is not None:
            return _utc(pd.Timestamp(config.reference_time))
        if len(events):
            return _utc(pd.Timestamp(events["occurred_at"].max()))
        return _utc(pd.Timestamp("1970-01-01"))

    def with_events(self, events: pd.DataFrame) -> Dataset:
        """A dataset with the same IDs and features but only ``events`` (e.g. a training split).

        ``events`` uses this dataset's ``events`` layout; the reference time for decay is
        recomputed from them unless the config fixes it.
        """
        shape = (self.n_customers, self.n_products)
        reference = self._reference_time(self.config, events)
        weight = _event_values(events["event_type"], self.config.event_weights)
        if self.config.half_life_days is not None and len(events):
            age_days = (pd.Timestamp(reference) - events["occurred_at"]).dt.total_seconds() / 86400
            weight = weight * np.power(
                0.5, np.maximum(age_days.to_numpy(), 0.0) / self.config.half_life_days
            )
        events = events.assign(weight=weight.astype(np.float32)).reset_index(drop=True)
        rows = events["customer"].to_numpy(dtype=np.int32)
        cols = events["product"].to_numpy(dtype=np.int32)
        matrix = sp.csr_matrix(
            (events["weight"].to_numpy(), (rows, cols)), shape=shape, dtype=np.float32
        )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        held = (
            _event_values(events["event_type"], dict.fromkeys(self.config.holding_event_types, 1.0))
            > 0
        )
        holdings = sp.csr_matrix(
            (np.ones(int(held.sum()), dtype=np.float32), (rows[held], cols[held])), shape=shape
        )
        holdings.sum_duplicates()
        holdings.data[:] = 1.0
        window = None
        if len(events):
            window = (
                pd.Timestamp(events["occurred_at"].min()).to_pydatetime(),
                pd.Timestamp(events["occurred_at"].max()).to_pydatetime(),
            )
        out = replace(
            self,
            interactions=matrix,
            holdings=holdings,
            events=events,
            reference_time=reference,
            window=window,
            fingerprint="",
        )
        return replace(out, fingerprint=out._compute_fingerprint())

    def history_matrix(self, interactions: pd.DataFrame) -> sp.csr_matrix:
        """Weighted rows for an interactions frame of new customers (rows = sorted unique IDs).

        Used to score customers who were not in the training data from their recent events.
        """
        ids = pd.Index(sorted(interactions["customer_id"].astype(str).unique()))
        rows = ids.get_indexer(interactions["customer_id"].astype(str))
        cols = self.product_ids.to_index(interactions["product_id"])
        mapped = interactions["event_type"].astype(str).map(self.config.event_weights)
        weight = mapped.fillna(0.0).to_numpy(dtype=np.float32)
        keep = (cols >= 0) & (weight > 0)
        matrix = sp.csr_matrix(
            (weight[keep], (rows[keep], cols[keep])),
            shape=(len(ids), self.n_products),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        return matrix

    def _compute_fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.config.model_dump_json().encode())
        for array in (self.customer_ids.external, self.product_ids.external):
            digest.update(np.ascontiguousarray(array).tobytes())
        for matrix in (self.interactions, self.customer_features, self.product_features):
            for part in (matrix.indptr, matrix.indices, matrix.data):
                digest.update(np.ascontiguousarray(part).tobytes())
        digest.update("|".join(self.customer_encoder.names + self.product_encoder.names).encode())
        digest.update(self.customer_risk_class.tobytes())
        digest.update(self.product_risk_level.tobytes())
        digest.update("|".join(self.product_status.tolist()).encode())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        """A small JSON-able summary for logs and manifests."""
        return {
            "customers": self.n_customers,
            "products": self.n_products,
            "interactions": int(self.interactions.nnz),
            "events": len(self.events),
            "dropped_interactions": self.dropped_interactions,
            "fingerprint": self.fingerprint,
        }


def _event_values(event_type: pd.Series, values: dict[str, float]) -> np.ndarray:
    """Per-event value by event type (0 for other types), computed once per category."""
    cat = event_type.astype("category")
    per_category = np.asarray(
        [values.get(str(c), 0.0) for c in cat.cat.categories], dtype=np.float64
    )
    codes = cat.cat.codes.to_numpy()
    return np.where(codes >= 0, per_category[codes], 0.0)


def _utc(stamp: pd.Timestamp) -> datetime:
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    result: datetime = stamp.to_pydatetime()
    return result


def _split_kinds(frame: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    """Free-form feature columns: numbers are binned, text/bool/category one-hot, dates skipped."""
    categorical: list[str] = []
    numeric: list[str] = []
    for column in columns:
        dtype = frame[column].dtype
        if pd.api.types.is_bool_dtype(dtype):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(dtype):
            numeric.append(column)
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        else:
            categorical.append(column)
    return categorical, numeric
