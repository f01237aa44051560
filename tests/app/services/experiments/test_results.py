"""Results: hand-computed statistics, SRM on a skewed log, replayed events counted once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Exposure, Product
from app.schemas.experiments import ExperimentCreate
from app.services.events import EventRules, ingest_events
from app.services.experiments.definitions import create_experiment
from app.services.experiments.results import (
    ArmCounts,
    compare,
    experiment_results,
    results_chart,
    srm_check,
    summarise,
)

TAKEUP = ("apply", "purchase", "hold")
T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_comparison_equals_hand_computed_numbers() -> None:
    # control 100/1000 clicked, treatment 130/1000:
    #   difference 0.03; Wald SE sqrt(.13*.87/1000 + .1*.9/1000) = 0.0142513...
    #   95% CI 0.03 -/+ 1.959964 * 0.0142513 = [0.0020681, 0.0579319]
    #   pooled p 0.115, SE0 sqrt(.115*.885*2/1000) = 0.0142671, z = 2.10274, p = 0.035489
    result = compare("ctr", 100, 1000, 130, 1000)
    assert result.difference == pytest.approx(0.03)
    assert result.ci_low == pytest.approx(0.0020681, abs=1e-6)
    assert result.ci_high == pytest.approx(0.0579319, abs=1e-6)
    assert result.z == pytest.approx(2.10274, abs=1e-4)
    assert result.p_value == pytest.approx(0.035489, abs=1e-5)
    assert result.relative_lift == pytest.approx(0.3)


def test_summary_of_a_constructed_log() -> None:
    arms = [
        ArmCounts("a", "control", 1.0, exposures=400, customers=200, clicked=40, converted=8),
        ArmCounts("b", "treatment", 1.0, exposures=500, customers=210, clicked=75, converted=20),
        ArmCounts("h", "holdout", 0.5, exposures=0, customers=0, clicked=0, converted=0),
    ]
    results = summarise("exp", "running", arms)
    a, b, h = results.variants
    assert (a.ctr, a.conversion) == (0.1, 0.02)
    assert (b.ctr, b.conversion) == (0.15, 0.04)
    assert h.ctr is None and h.comparisons == []
    assert [c.metric for c in b.comparisons] == ["ctr", "conversion"]
    assert b.comparisons[1].difference == pytest.approx(0.02)
    assert [v.expected_share for v in results.variants] == [0.4, 0.4, 0.2]
    # SRM: 410 customers against 40/40/20% -> expected 164, 164, 82; observed 200, 210, 0.
    expected_chi2 = (36**2 + 46**2) / 164 + 82
    assert results.srm.chi_square == pytest.approx(expected_chi2)
    assert results.srm.status == "alert"
    assert results_chart(results).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("observed", "status"),
    [
        ([5000, 5050], "ok"),
        ([5000, 5300], "warn"),
        ([5000, 5600], "alert"),
        ([3, 1], "insufficient"),
    ],
)
def test_srm_thresholds(observed: list[int], status: str) -> None:
    # 5000 vs 5300: chi2 = 8.74, p = 0.0031 (warn); 5000 vs 5600: chi2 = 33.96 (alert).
    assert srm_check(observed, [1, 1]).status == status


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


def _experiment(session: Session) -> None:
    create_experiment(
        session,
        ExperimentCreate.model_validate(
            {
                "key": "exp",
                "salt": "s",
                "variants": [
                    {"name": "a", "role": "control", "weight": 1, "strategy": "popularity"},
                    {"name": "b", "weight": 1, "strategy": "als"},
                ],
            }
        ),
    )


def _exposures(session: Session, per_arm: dict[str, int]) -> None:
    rows = [
        {
            "recommendation_id": f"{arm}-{i}",
            "customer_id": f"{arm}-cust-{i}",
            "strategy": "popularity",
            "served_from": "fallback",
            "degraded": False,
            "experiment": "exp",
            "variant": arm,
            "items": [],
            "served_at": T0,
        }
        for arm, n in per_arm.items()
        for i in range(n)
    ]
    session.execute(insert(Exposure), rows)


def test_srm_is_detected_on_a_skewed_log(session: Session) -> None:
    _experiment(session)
    _exposures(session, {"a": 600, "b": 400})
    session.commit()
    results = experiment_results(session, "exp", TAKEUP)
    assert [v.customers for v in results.variants] == [600, 400]
    assert [v.served_by for v in results.variants] == [{"popularity": 600}, {"popularity": 400}]
    assert results.srm.status == "alert"
    assert results.srm.p_value is not None and results.srm.p_value < 1e-6


def test_outcomes_attach_once_per_exposure_and_only_from_its_customer(session: Session) -> None:
    _experiment(session)
    _exposures(session, {"a": 4, "b": 2})
    session.add(Product(product_id="p", name="p", category="fund", risk_level="R1"))
    for arm, n in {"a": 4, "b": 2}.items():
        session.add_all(Customer(customer_id=f"{arm}-cust-{i}") for i in range(n))
    session.add(Customer(customer_id="stranger"))
    session.commit()

    def event(event_id: str, rid: str, kind: str, customer: str | None = None) -> dict[str, str]:
        return {
            "event_id": event_id,
            "customer_id": customer or rid.replace("-", "-cust-"),
            "product_id": "p",
            "event_type": kind,
            "occurred_at": (T0 + timedelta(minutes=1)).isoformat(),
            "recommendation_id": rid,
        }

    batch = [
        event("e1", "a-0", "click"),
        event("e2", "a-0", "click"),  # a second click on the same list
        event("e3", "a-0", "apply"),
        event("e4", "a-1", "view"),  # neither click nor conversion
        event("e5", "a-2", "click", customer="stranger"),  # not the customer shown the list
        event("e6", "b-0", "click"),
        event("e7", "b-1", "purchase"),
    ]
    rules = EventRules(frozenset({"view", "click", "apply", "purchase", "hold"}), frozenset())
    now = T0 + timedelta(hours=1)
    assert ingest_events(session, batch, rules, now=now).accepted == 7
    assert ingest_events(session, batch, rules, now=now).duplicate == 7  # replayed

    a, b = experiment_results(session, "exp", TAKEUP).variants
    assert (a.exposures, a.clicked_exposures, a.converted_exposures) == (4, 1, 1)
    assert (b.exposures, b.clicked_exposures, b.converted_exposures) == (2, 1, 1)
    assert (a.ctr, b.ctr, b.conversion) == (0.25, 0.5, 0.5)
