"""One-hot feature encoding for customers and products, frozen at fit so new rows encode alike.

An encoder is fitted on the training frames and travels inside every artifact (as JSON), so a
customer who was not in the training data can be encoded into the same feature columns at
serving time and scored by the models that use features.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict


def _bin_labels(column: str, edges: Sequence[float]) -> list[str]:
    if not edges:
        return [f"{column}=all"]
    labels = [f"{column}<{edges[0]:g}"]
    labels += [f"{column}={lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"{column}>={edges[-1]:g}")
    return labels


def _split_tags(values: pd.Series) -> pd.Series:
    """Tags arrive as lists (frames) or "|"-separated strings (files); normalise to lists."""

    def one(value: object) -> list[str]:
        if isinstance(value, str):
            return [t.strip() for t in value.split("|") if t.strip()]
        if isinstance(value, Iterable):
            return [str(t).strip() for t in value if str(t).strip()]
        return []

    return values.map(one)


class FeatureEncoder(BaseModel):
    """Maps frame columns to named one-hot columns: ``segment=mass``, ``age=35-45``, ``tag=esg``.

    Categorical columns become ``column=value``; numeric columns are binned by ``numeric_edges``;
    the tag column contributes ``tag=value`` per tag. Unknown values encode to nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    categorical: tuple[str, ...] = ()
    numeric_edges: dict[str, tuple[float, ...]] = {}
    tag_column: str | None = None
    names: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        *,
        categorical: Sequence[str],
        numeric: Sequence[str],
        fixed_edges: dict[str, Sequence[float]] | None = None,
        tag_column: str | None = None,
        max_categories: int = 50,
        numeric_bins: int = 5,
    ) -> FeatureEncoder:
        """Learn the vocabulary (most frequent values) and numeric bin edges from ``frame``."""
        fixed_edges = fixed_edges or {}
        names: list[str] = []
        cats: list[str] = []
        for column in categorical:
            if column not in frame.columns:
                continue
            counts = frame[column].dropna().astype(str).value_counts()
            if counts.empty:
                continue
            # Deterministic: most frequent first, ties by value; then sorted for readable names.
            pairs = [(str(value), int(count)) for value, count in counts.items()]
            top = sorted(
                sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:max_categories],
                key=lambda kv: kv[0],
            )
            cats.append(column)
            names += [f"{column}={value}" for value, _ in top]
        edges: dict[str, tuple[float, ...]] = {}
        for column in numeric:
            if column not in frame.columns:
                continue
            if column in fixed_edges:
                col_edges = tuple(float(e) for e in fixed_edges[column])
            else:
                values = pd.to_numeric(frame[column], errors="coerce").dropna().to_numpy()
                if values.size == 0:
                    continue
                qs = np.linspace(0, 1, numeric_bins + 1)[1:-1]
                col_edges = tuple(float(e) for e in np.unique(np.quantile(values, qs)))
            edges[column] = col_edges
            names += _bin_labels(column, col_edges)
        if tag_column is not None and tag_column in frame.columns:
            tags = _split_tags(frame[tag_column]).explode().dropna()
            counts = tags.value_counts()
            top_tags = sorted(str(t) for t in counts.index[: max_categories * 4])
            names += [f"tag={t}" for t in top_tags]
        else:
            tag_column = None
        return cls(
            categorical=tuple(cats), numeric_edges=edges, tag_column=tag_column, names=tuple(names)
        )

    @property
    def n_features(self) -> int:
        return len(self.names)

    def encode(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """Encode ``frame`` rows (in order) into a float32 0/1 CSR matrix over ``names``."""
        lookup = pd.Index(self.names)
        n = len(frame)
        rows: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        positions = np.arange(n, dtype=np.int64)
        for column in self.categorical:
            if column not in frame.columns:
                continue
            values = frame[column]
            present = values.notna().to_numpy()
            rows.append(positions[present])
            labels.append((column + "=" + values[present].astype(str)).to_numpy(dtype=object))
        for column, edges in self.numeric_edges.items():
            if column not in frame.columns:
                continue
            numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
            present = ~np.isnan(numbers)
            bins = np.digitize(numbers[present], np.asarray(edges, dtype=np.float64))
            names = np.asarray(_bin_labels(column, edges), dtype=object)
            rows.append(positions[present])
            labels.append(names[bins])
        if self.tag_column is not None and self.tag_column in frame.columns:
            tags = _split_tags(frame[self.tag_column].reset_index(drop=True)).explode().dropna()
            rows.append(tags.index.to_numpy(dtype=np.int64))
            labels.append(("tag=" + tags.astype(str)).to_numpy(dtype=object))
        if not rows:
            return sp.csr_matrix((n, len(self.names)), dtype=np.float32)
        row = np.concatenate(rows)
        col = lookup.get_indexer(pd.Index(np.concatenate(labels)))
        keep = col >= 0
        matrix = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (row[keep], col[keep])),
            shape=(n, len(self.names)),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix
