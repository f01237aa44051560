"""The block forms the precompute runs hold equal to the scalar forms the API runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from app.jobs.precompute import scoring
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


def _random_block(seed: int, products: int = 40, n: int = 400) -> dict[str, object]:
    from app.jobs.precompute.scoring import BlockInputs
    from app.services.recommend.catalog import CatalogSnapshot

    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(products)]
    cats = ("a", "b", "c", "d")
    catalog = CatalogSnapshot.build(
        [
            (pid, pid, cats[int(rng.integers(0, 4))], f"R{rng.integers(1, 6)}", "active")
            if rng.random() > 0.1
            else (pid, pid, "a", "R1", "closed")
            for pid in ids
        ],
        {pid: float(rng.integers(0, 50)) for pid in ids},
        {"s1": {pid: float(rng.integers(1, 9)) for pid in rng.choice(ids, size=products // 3)}},
    )
    inputs = BlockInputs.of(catalog, None)
    # Scores rounded so some ties happen (inside the candidates they rank by position; across
    # the cut the row is ranked by the array form), some rows unscored.
    scores = np.round(rng.standard_normal((n, products)), 2).astype(np.float32)
    return {
        "inputs": inputs,
        "scores": scores,
        "scored": rng.random(n) > 0.2,
        "risk": rng.integers(0, 6, size=n).astype(np.int64),
        "holdings": sp.csr_matrix((rng.random((n, products)) > 0.8).astype(np.int8)),
        "pool_index": rng.integers(0, 2, size=n).astype(np.int64),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("k", "cap", "exclude_held"), [(6, 2, True), (20, 3, True), (9, None, False)]
)
def test_compiled_block_equals_the_array_form(
    seed: int, k: int, cap: int | None, exclude_held: bool
) -> None:
    from app.jobs.precompute.scoring import score_lists, score_lists_reference

    data = _random_block(seed)
    scored = data["scored"]
    assert isinstance(scored, np.ndarray) and isinstance(data["scores"], np.ndarray)
    args = {**data, "scores": data["scores"][scored]}
    got = score_lists(**args, k=k, cap=cap, exclude_held=exclude_held)  # type: ignore[arg-type]
    want = score_lists_reference(**args, k=k, cap=cap, exclude_held=exclude_held)  # type: ignore[arg-type]
    assert np.array_equal(got.positions, want.positions)
    assert np.array_equal(got.scores, want.scores)
    assert np.array_equal(got.source, want.source)
    assert (got.positions >= 0).sum() > 0.5 * got.positions.size  # lists are mostly full


def _skewed_block(seed: int) -> dict[str, object]:
    """A block where the cap's picks cross the candidate line: one category scores far below
    the others, many scores tie (one decimal), and a few are NaN or infinite."""
    from app.jobs.precompute.scoring import BlockInputs
    from app.services.recommend.catalog import CatalogSnapshot

    rng = np.random.default_rng(seed)
    products, n = 120, 300
    ids = [f"P{i:03d}" for i in range(products)]
    cats = ("a", "b", "c", "d", "e")
    cat_of = rng.integers(0, 5, size=products)
    catalog = CatalogSnapshot.build(
        [(pid, pid, cats[int(cat_of[i])], "R1", "active") for i, pid in enumerate(ids)],
        {pid: float(rng.integers(0, 50)) for pid in ids},
        {"s1": {pid: float(rng.integers(1, 9)) for pid in rng.choice(ids, size=40)}},
    )
    inputs = BlockInputs.of(catalog, None)
    scores = np.round(rng.standard_normal((n, products)), 1).astype(np.float32)
    scores[:, cat_of == 4] -= 3.0  # category "e" ranks below the line for most rows
    odd = rng.random((n, products))
    scores[odd < 0.01] = np.nan
    scores[(odd >= 0.01) & (odd < 0.015)] = np.inf
    return {
        "inputs": inputs,
        "scores": scores,
        "scored": rng.random(n) > 0.1,
        "risk": np.full(n, 1, dtype=np.int64),
        "holdings": sp.csr_matrix((rng.random((n, products)) > 0.9).astype(np.int8)),
        "pool_index": rng.integers(0, 2, size=n).astype(np.int64),
    }


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize(("k", "cap"), [(3, 1), (4, 1), (8, 2), (12, 2), (5, None)])
def test_compiled_block_equals_the_array_form_across_the_candidate_line(
    seed: int, k: int, cap: int | None
) -> None:
    """Short candidate lists (``limit`` = 3k + 5 of 120 products) under tight caps: the cap's
    best of a category often ranks past the line, ties straddle it, backfill meets candidates
    and non-candidates with finite scores, and NaN / +inf are never candidates."""
    from app.jobs.precompute.scoring import score_lists, score_lists_reference

    data = _skewed_block(seed)
    scored = data["scored"]
    assert isinstance(scored, np.ndarray) and isinstance(data["scores"], np.ndarray)
    args = {**data, "scores": data["scores"][scored]}
    got = score_lists(**args, k=k, cap=cap, exclude_held=True)  # type: ignore[arg-type]
    want = score_lists_reference(**args, k=k, cap=cap, exclude_held=True)  # type: ignore[arg-type]
    assert np.array_equal(got.positions, want.positions)
    assert np.array_equal(got.scores, want.scores)
    assert np.array_equal(got.source, want.source)
    # The skew worked: category "e" products reach lists only by backfill, some rows.
    assert (got.source > 0).any()


@pytest.mark.parametrize("shape", [(23, 3), (23,)])
def test_gathered_rows_equal_fancy_indexing_of_a_mapped_array(
    shape: tuple[int, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "_GATHER_ROWS", 4)  # several slices
    source = np.memmap(tmp_path / "a.bin", dtype=np.float32, mode="w+", shape=shape)
    source[:] = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    released: list[int] = []

    class Loaded:
        def release_pages(self) -> None:
            released.append(1)

    positions = np.asarray([22, 0, 5, 5, 17, 3, 9, 11, 1, 20], dtype=np.int64)
    rows = scoring._gather_rows(Loaded(), source, positions)  # type: ignore[arg-type]
    assert not isinstance(rows, np.memmap)
    np.testing.assert_array_equal(rows, np.asarray(source)[positions])
    assert len(released) == 3  # after every slice
