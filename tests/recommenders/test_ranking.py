"""The shared ranker: order, ties, masks and padding."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommenders.ranking import apply_allowed, apply_exclusions, top_k


def test_top_k_orders_best_first_and_breaks_ties_by_index() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    idx, values = top_k(scores, 3)
    assert idx.tolist() == [[1, 3, 2], [0, 1, 2]]
    assert values.dtype == np.float32 and idx.dtype == np.int32
    np.testing.assert_array_equal(values[0], scores[0, [1, 3, 2]])


def test_masked_entries_become_padding() -> None:
    scores = np.ones((2, 4), dtype=np.float32)
    apply_exclusions(scores, sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 0]])))
    scores = apply_allowed(scores, np.array([True, True, True, False]))
    idx, values = top_k(scores, 6)
    assert idx.tolist() == [[2, -1, -1, -1, -1, -1], [0, 1, 2, -1, -1, -1]]
    assert np.isneginf(values[0, 1:]).all()


def test_shapes_are_checked() -> None:
    scores = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError):
        apply_exclusions(scores, sp.csr_matrix((2, 4)))
    with pytest.raises(ValueError):
        apply_allowed(scores, np.ones(4, dtype=bool))
    with pytest.raises(ValueError):
        top_k(scores, 0)
