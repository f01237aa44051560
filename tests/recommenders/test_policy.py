"""The policy gate: the scalar rules, and the vectorised forms held equal to them."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recommenders.policy import (
    add_months,
    allowed_mask,
    allowed_row,
    effective_risk_class,
    is_allowed,
    parse_level,
    personalisation_allowed,
    select_with_category_cap,
)

NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "prefix", "expected"),
    [
        ("C3", "C", 3),
        ("r5", "R", 5),
        (2, "R", 2),
        ("C0", "C", 0),
        ("C6", "C", 0),
        (None, "C", 0),
        ("x", "R", 0),
        (True, "R", 0),
    ],
)
def test_parse_level(value: object, prefix: str, expected: int) -> None:
    assert parse_level(value, prefix) == expected


def test_add_months_clamps_the_day() -> None:
    assert add_months(datetime(2025, 1, 31, tzinfo=UTC), 1) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2024, 11, 15, tzinfo=UTC), 24) == datetime(2026, 11, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("risk", "assessed", "expected"),
    [
        ("C4", datetime(2026, 1, 1, tzinfo=UTC), 4),
        ("C4", datetime(2024, 11, 25, tzinfo=UTC), 0),  # exactly 24 months: expired
        ("C4", datetime(2024, 11, 26, tzinfo=UTC), 4),
        ("C4", None, 0),
        (None, datetime(2026, 1, 1, tzinfo=UTC), 0),
    ],
)
def test_effective_risk_class(risk: str | None, assessed: datetime | None, expected: int) -> None:
    assert effective_risk_class(risk, assessed, NOW, 24) == expected


@pytest.mark.parametrize(
    ("risk", "level", "active", "held", "exclude_held", "expected"),
    [
        (3, 3, True, False, True, True),
        (3, 4, True, False, True, False),  # above the customer's class
        (0, 1, True, False, True, True),  # unassessed: R1 only
        (0, 2, True, False, True, False),
        (5, 1, False, False, True, False),  # inactive
        (5, 0, True, False, True, False),  # malformed risk level
        (5, 2, True, True, True, False),  # held
        (5, 2, True, True, False, True),  # held but the placement shows holdings
    ],
)
def test_scalar_rules(
    risk: int, level: int, active: bool, held: bool, exclude_held: bool, expected: bool
) -> None:
    assert (
        is_allowed(
            customer_risk_class=risk,
            product_risk_level=level,
            product_active=active,
            held=held,
            exclude_held=exclude_held,
        )
        is expected
    )


def test_consent_must_be_explicit() -> None:
    assert personalisation_allowed(True)
    assert not personalisation_allowed(False)
    assert not personalisation_allowed(None)


@st.composite
def _block(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    n = draw(st.integers(1, 6))
    p = draw(st.integers(1, 12))
    classes = draw(arrays(np.int8, n, elements=st.integers(0, 5)))
    levels = draw(arrays(np.int8, p, elements=st.integers(0, 5)))
    active = draw(arrays(np.bool_, p))
    held = draw(arrays(np.bool_, (n, p)))
    return classes, levels, active, held, draw(st.booleans())


@settings(max_examples=200, deadline=None)
@given(_block())
def test_vectorised_forms_equal_the_scalar_rules(
    block: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool],
) -> None:
    classes, levels, active, held, exclude_held = block
    mask = allowed_mask(classes, levels, active, sp.csr_matrix(held), exclude_held=exclude_held)
    for i, risk in enumerate(classes.tolist()):
        row = allowed_row(risk, levels, active, np.flatnonzero(held[i]), exclude_held=exclude_held)
        expected = [
            is_allowed(
                customer_risk_class=risk,
                product_risk_level=int(levels[j]),
                product_active=bool(active[j]),
                held=bool(held[i, j]),
                exclude_held=exclude_held,
            )
            for j in range(levels.shape[0])
        ]
        assert row.tolist() == expected
        assert mask[i].tolist() == expected


def test_allowed_mask_checks_the_holdings_shape() -> None:
    with pytest.raises(ValueError, match="holdings have shape"):
        allowed_mask(np.array([1]), np.array([1, 1]), np.array([True, True]), sp.csr_matrix((2, 2)))


def test_category_cap_keeps_order_and_counts_items_already_chosen() -> None:
    categories = np.array([0, 0, 0, 1, 1, 2])
    assert select_with_category_cap([0, 1, 2, 3, 4, 5], categories, 5, 2) == [0, 1, 3, 4, 5]
    assert select_with_category_cap([0, 1, 2, 3], categories, 3, 2, already=[2]) == [0, 3]
    assert select_with_category_cap([-1, 5, 5, 0], categories, 3, None) == [5, 0]
