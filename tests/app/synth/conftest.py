"""A small synthetic bank shared by the generator tests (drawn once per session)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.synth import Bank, SynthConfig, generate_bank

END = dt.date(2025, 6, 1)
SMALL = SynthConfig(n_customers=500, seed=11, end_date=END)


@pytest.fixture(scope="session")
def bank() -> Bank:
    return generate_bank(SMALL.n_customers, SMALL.seed, end_date=END)


@pytest.fixture(scope="session")
def larger_bank() -> Bank:
    """Enough customers for behavioural statistics to be stable (still under a second)."""
    return generate_bank(4_000, 5, end_date=END)
