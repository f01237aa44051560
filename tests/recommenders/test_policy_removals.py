"""The rule explanation: code 0 exactly where the gate allows, else the first rule broken."""

from __future__ import annotations

import numpy as np
import pytest

from recommenders.policy import (
    REMOVAL_RULES,
    RULE_HELD,
    RULE_INACTIVE,
    RULE_SUITABILITY,
    RULE_UNASSESSED,
    is_allowed,
    removal_codes,
)


def names(codes: np.ndarray) -> list[str]:
    return [REMOVAL_RULES[c] for c in codes.tolist()]


def test_codes_are_zero_exactly_where_the_scalar_gate_allows() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 20))
        levels = rng.integers(0, 6, n).astype(np.int8)
        active = rng.random(n) < 0.7
        held = rng.random(n) < 0.3
        risk = int(rng.integers(0, 6))
        exclude = bool(rng.integers(0, 2))
        codes = removal_codes(risk, levels, active, held, exclude_held=exclude)
        expected = [
            is_allowed(
                customer_risk_class=risk,
                product_risk_level=int(levels[i]),
                product_active=bool(active[i]),
                held=bool(held[i]),
                exclude_held=exclude,
            )
            for i in range(n)
        ]
        assert (codes == 0).tolist() == expected


@pytest.mark.parametrize(
    ("risk", "level", "active", "held", "rule"),
    [
        (3, 5, False, True, RULE_INACTIVE),  # inactive before held and suitability
        (3, 5, True, True, RULE_HELD),  # held before suitability
        (0, 2, True, False, RULE_UNASSESSED),  # no valid assessment: R1 only
        (0, 1, True, False, ""),
        (2, 3, True, False, RULE_SUITABILITY),
        (5, 0, True, False, RULE_SUITABILITY),  # malformed risk level
        (0, 0, True, False, RULE_SUITABILITY),
        (2, 2, True, False, ""),
    ],
)
def test_precedence(risk: int, level: int, active: bool, held: bool, rule: str) -> None:
    codes = removal_codes(
        risk, np.asarray([level], np.int8), np.asarray([active]), np.asarray([held])
    )
    assert names(codes) == [rule]


def test_held_is_no_rule_where_the_placement_shows_holdings() -> None:
    codes = removal_codes(
        5,
        np.asarray([1, 1], np.int8),
        np.asarray([True, False]),
        np.asarray([True, True]),
        exclude_held=False,
    )
    assert names(codes) == ["", RULE_INACTIVE]
