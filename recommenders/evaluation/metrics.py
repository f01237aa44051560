"""Ranking metrics at k, vectorised over customers.

Inputs are the ranked lists as an int array ``recommended`` (customers x width, ``-1`` pads a
short list) and the relevance matrix ``relevant`` (a sparse customers x products matrix whose
stored entries are the relevant pairs), row ``i`` of both describing the same customer.
Definitions are in ``docs/evaluation.md``; in short, with ``rel_i`` the number of relevant
products of customer ``i`` and ``hit_ij`` whether the item at rank ``j`` (1-based) is relevant:

* precision@k = hits / k          * recall@k = hits / rel_i        * hit rate@k = [hits > 0]
* AP@k = sum_j hit_ij * precision@j / rel_i   (``map_denominator="relevant"``, the default,
  the MovieLens benchmark convention) or ``/ min(k, rel_i)`` (``"min"``)
* nDCG@k = sum_j hit_ij / log2(j + 1) over the ideal sum_{j <= min(k, rel_i)} 1 / log2(j + 1)

Per-customer values are averaged over customers with at least one relevant product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp

MapDenominator = Literal["relevant", "min"]
ACCURACY_METRICS: tuple[str, ...] = ("precision", "recall", "map", "ndcg", "hit_rate")
BEYOND_ACCURACY_METRICS: tuple[str, ...] = ("coverage", "diversity", "novelty")
METRICS: tuple[str, ...] = ACCURACY_METRICS + BEYOND_ACCURACY_METRICS


def hit_matrix(recommended: np.ndarray, relevant: sp.spmatrix | sp.sparray) -> np.ndarray:
    """Boolean (customers x width): whether each recommended item is relevant for its row."""
    rel = sp.csr_matrix(relevant)
    recs = np.asarray(recommended, dtype=np.int64)
    if recs.ndim != 2 or recs.shape[0] != rel.shape[0]:
        raise ValueError(f"recommended has shape {recs.shape}; relevant has {rel.shape[0]} rows")
    n_products = rel.shape[1]
    rel_rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    rel_keys = np.unique(rel_rows * n_products + rel.indices.astype(np.int64))
    rec_keys = np.arange(recs.shape[0], dtype=np.int64)[:, None] * n_products + recs
    hits = np.isin(rec_keys, rel_keys)
    hits &= recs >= 0
    return hits


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def accuracy_at_k(
    recommended: np.ndarray,
    relevant: sp.spmatrix | sp.sparray,
    k: int,
    *,
    map_denominator: MapDenominator = "relevant",
) -> dict[str, np.ndarray]:
    """Per-customer precision, recall, AP ("map"), nDCG and hit rate at ``k``.

    Rows without any relevant product get NaN (they cannot be scored); :func:`mean_metrics`
    skips them.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    recs = np.asarray(recommended)[:, :k]
    hits = hit_matrix(recs, relevant).astype(np.float64)
    if hits.shape[1] < k:  # a narrower list counts its missing slots as misses
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    n_rel = np.diff(sp.csr_matrix(relevant).indptr).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_hits = hits.sum(axis=1)
        precision_at_j = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
        denom = n_rel if map_denominator == "relevant" else np.minimum(n_rel, k)
        ap = (hits * precision_at_j).sum(axis=1) / denom
        disc = _discounts(k)
        ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n_rel, k).astype(np.int64)]
        ndcg = (hits * disc).sum(axis=1) / ideal
        out = {
            "precision": n_hits / k,
            "recall": n_hits / n_rel,
            "map": ap,
            "ndcg": ndcg,
            "hit_rate": (n_hits > 0).astype(np.float64),
        }
    empty = n_rel == 0
    for values in out.values():
        values[empty] = np.nan
    return out


def mean_metrics(per_customer: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of each per-customer metric over the rows that could be scored."""
    return {
        name: float(np.nanmean(v)) if np.any(~np.isnan(v)) else float("nan")
        for name, v in per_customer.items()
    }


def catalogue_coverage(recommended: np.ndarray, k: int, n_products: int) -> float:
    """Share of the catalogue that appears in at least one top-``k`` list."""
    recs = np.asarray(recommended)[:, :k]
    shown = np.unique(recs[recs >= 0])
    return float(len(shown) / n_products) if n_products else float("nan")


def intra_list_diversity(recommended: np.ndarray, k: int, categories: np.ndarray) -> float:
    """Mean over lists of the share of item pairs whose categories differ.

    ``categories`` maps product index to a category code (``-1`` = unknown, which counts as
    its own category). Lists with fewer than two items are skipped.
    """
    recs = np.asarray(recommended)[:, :k]
    cats = np.asarray(categories, dtype=np.int64)
    valid = recs >= 0
    codes = np.where(valid, cats[np.where(valid, recs, 0)], 0)
    same = (codes[:, :, None] == codes[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    n = valid.sum(axis=1).astype(np.float64)
    pairs = n * (n - 1) / 2.0
    same_pairs = (same.sum(axis=(1, 2)) - n) / 2.0
    scored = pairs > 0
    if not np.any(scored):
        return float("nan")
    return float(np.mean(1.0 - same_pairs[scored] / pairs[scored]))


def self_information(train: sp.spmatrix | sp.sparray) -> np.ndarray:
    """Per product ``-log2((c + 1) / (n + 1))``: ``c`` customers of ``n`` interacted in training.

    The add-one keeps a product nobody touched finite (it gets the largest value).
    """
    matrix = sp.csr_matrix(train)
    counts = np.diff(sp.csc_matrix(matrix).indptr).astype(np.float64)
    information: np.ndarray = -np.log2((counts + 1.0) / (matrix.shape[0] + 1.0))
    return information


def novelty(recommended: np.ndarray, k: int, information: np.ndarray) -> float:
    """Mean self-information of the recommended items (higher = less obvious)."""
    recs = np.asarray(recommended)[:, :k]
    shown = recs[recs >= 0]
    return float(np.mean(np.asarray(information)[shown])) if shown.size else float("nan")


def evaluate_lists(
    recommended: np.ndarray,
    relevant: sp.spmatrix | sp.sparray,
    ks: Sequence[int],
    *,
    categories: np.ndarray | None = None,
    information: np.ndarray | None = None,
    map_denominator: MapDenominator = "relevant",
) -> dict[int, dict[str, float]]:
    """Every metric at every ``k``: ``{k: {metric: value}}``.

    ``recommended`` must be at least ``max(ks)`` wide (pad with ``-1``). Diversity needs
    ``categories`` and novelty needs ``information`` (:func:`self_information`); without them
    those metrics are NaN.
    """
    rel = sp.csr_matrix(relevant)
    results: dict[int, dict[str, float]] = {}
    for k in sorted(set(ks)):
        row = mean_metrics(accuracy_at_k(recommended, rel, k, map_denominator=map_denominator))
        row["coverage"] = catalogue_coverage(recommended, k, rel.shape[1])
        row["diversity"] = (
            intra_list_diversity(recommended, k, categories)
            if categories is not None
            else float("nan")
        )
        row["novelty"] = (
            novelty(recommended, k, information) if information is not None else float("nan")
        )
        results[k] = row
    return results
