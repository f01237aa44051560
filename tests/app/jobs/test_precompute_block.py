"""The block forms the precompute runs hold equal to the scalar forms the API runs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.jobs.precompute.scoring import gate_rows, gated_scores
from recommenders.policy import (
    allowed_by_risk_class,
    allowed_mask,
    category_cap_take,
    penalty_by_risk_class,
    select_with_category_cap,
)


def _expected(
    ranked: np.ndarray,
    avail: np.ndarray,
    cats: np.ndarray,
    already: list[int],
    need: int,
    cap: int | None,
) -> list[int]:
    items = [int(x) if ok else -1 for x, ok in zip(ranked, avail, strict=True)]
    k = len(already) + need
    return select_with_category_cap(items, cats, k, cap, already=already)


@pytest.mark.parametrize("cap", [None, 1, 2, 3])
@pytest.mark.parametrize("shared", [True, False])
def test_block_category_cap_equals_the_scalar_walk(cap: int | None, shared: bool) -> None:
    rng = np.random.default_rng(3 if shared else 4)
    products, width, n_cats = 40, 25, 4
    cats_of = rng.integers(0, n_cats, size=products)
    n = 300
    if shared:
        order = rng.permutation(products)[:width]
        ranked = np.broadcast_to(order, (n, width))
    else:
        ranked = np.stack([rng.permutation(products)[:width] for _ in range(n)])
    avail = rng.random((n, width)) > 0.3
    already = [
        [int(p) for p in rng.choice(products, size=rng.integers(0, 5), replace=False)]
        for _ in range(n)
    ]
    for i in range(n):  # an item chosen earlier is never available again
        avail[i] &= ~np.isin(ranked[i], already[i])
    counts = np.zeros((n, n_cats), dtype=np.int32)
    for i, items in enumerate(already):
        for p in items:
            counts[i, cats_of[p]] += 1
    need = rng.integers(0, 12, size=n)
    cats = cats_of[order] if shared else cats_of[ranked]
    taken = category_cap_take(cats, avail, counts, need, cap)
    for i in range(n):
        got = ranked[i][taken[i]].tolist()
        assert got == _expected(ranked[i], avail[i], cats_of, already[i], int(need[i]), cap), i


def test_block_gate_equals_allowed_mask_and_the_penalty_table() -> None:
    rng = np.random.default_rng(5)
    n, products = 200, 30
    levels = rng.integers(0, 6, size=products)
    active = rng.random(products) > 0.2
    risk = rng.integers(0, 6, size=n)
    held = sp.csr_matrix((rng.random((n, products)) > 0.85).astype(np.int8))
    for exclude_held in (True, False):
        expected = allowed_mask(risk, levels, active, held, exclude_held=exclude_held)
        got = gate_rows(allowed_by_risk_class(levels, active), risk, held, exclude_held)
        assert np.array_equal(got, expected)
        scores = rng.standard_normal((n, products)).astype(np.float32)
        gated = gated_scores(
            scores.copy(), penalty_by_risk_class(levels, active), risk, held, exclude_held
        )
        assert np.array_equal(np.isfinite(gated), expected)
        assert np.array_equal(gated[expected], scores[expected])
