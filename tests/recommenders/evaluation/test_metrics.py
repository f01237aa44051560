"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommenders.evaluation.metrics import (
    accuracy_at_k,
    catalogue_coverage,
    evaluate_lists,
    hit_matrix,
    intra_list_diversity,
    mean_metrics,
    novelty,
    self_information,
)

RECS = np.array([[1, 3, 5], [2, -1, -1], [0, 4, 6], [1, 3, 5]])
RELEVANT = sp.csr_matrix((np.ones(6), ([0, 0, 0, 1, 2, 2], [1, 5, 7, 2, 9, 8])), shape=(4, 10))
CATEGORIES = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])


def test_hit_matrix_marks_relevant_items_and_ignores_padding() -> None:
    hits = hit_matrix(RECS, RELEVANT)
    assert hits.tolist() == [
        [True, False, True],
        [True, False, False],
        [False, False, False],
        [False, False, False],
    ]


def test_accuracy_at_3_by_hand() -> None:
    m = accuracy_at_k(RECS, RELEVANT, 3)
    ideal0 = 1 + 1 / math.log2(3) + 1 / 2
    assert m["precision"][:3] == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert m["recall"][:3] == pytest.approx([2 / 3, 1.0, 0.0])
    assert m["map"][:3] == pytest.approx([(1 + 2 / 3) / 3, 1.0, 0.0])
    assert m["ndcg"][:3] == pytest.approx([1.5 / ideal0, 1.0, 0.0])
    assert m["hit_rate"][:3] == pytest.approx([1.0, 1.0, 0.0])
    assert all(np.isnan(v[3]) for v in m.values())  # no relevant products: not scored
    means = mean_metrics(m)
    assert means["precision"] == pytest.approx((2 / 3 + 1 / 3) / 3)
    assert means["ndcg"] == pytest.approx((1.5 / ideal0 + 1.0) / 3)


def test_map_denominator_conventions_differ_when_k_is_below_relevant_count() -> None:
    relevant = accuracy_at_k(RECS, RELEVANT, 1)["map"]
    shortest = accuracy_at_k(RECS, RELEVANT, 1, map_denominator="min")["map"]
    assert relevant[0] == pytest.approx(1 / 3)  # one hit over three relevant products
    assert shortest[0] == pytest.approx(1.0)  # one hit over min(k=1, 3)
    assert accuracy_at_k(RECS, RELEVANT, 1)["ndcg"][0] == pytest.approx(1.0)


def test_narrow_lists_count_missing_slots_as_misses() -> None:
    m = accuracy_at_k(RECS[:, :2], RELEVANT, 3)
    assert m["precision"][0] == pytest.approx(1 / 3)


def test_beyond_accuracy_metrics_by_hand() -> None:
    assert catalogue_coverage(RECS, 3, 10) == pytest.approx(0.7)
    assert catalogue_coverage(RECS, 1, 10) == pytest.approx(0.3)
    # Lists: all-different (1), single item (skipped), two of three pairs differ, all-different.
    assert intra_list_diversity(RECS, 3, CATEGORIES) == pytest.approx((1 + 2 / 3 + 1) / 3)
    info = np.arange(10, dtype=np.float64)
    assert novelty(RECS, 1, info) == pytest.approx((1 + 2 + 0 + 1) / 4)


def test_self_information_uses_add_one_popularity() -> None:
    train = sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 1], [0, 0]], dtype=np.float32))
    info = self_information(train)
    assert info == pytest.approx([-math.log2(4 / 5), -math.log2(2 / 5)])


def test_evaluate_lists_reports_every_metric_at_every_k() -> None:
    out = evaluate_lists(RECS, RELEVANT, [1, 3], categories=CATEGORIES, information=np.zeros(10))
    assert sorted(out) == [1, 3]
    assert set(out[3]) == {
        "precision",
        "recall",
        "map",
        "ndcg",
        "hit_rate",
        "coverage",
        "diversity",
        "novelty",
    }
    assert out[3]["hit_rate"] == pytest.approx(2 / 3)
    assert math.isnan(evaluate_lists(RECS, RELEVANT, [3])[3]["diversity"])
