"""Experiment results from the exposure log and the interaction log.

Definitions (also in the experiments guide):

- **exposure**: one ``exposures`` row with ``experiment = key`` (one served list);
- **unique customers**: distinct ``customer_id`` among an arm's exposures;
- an exposure is **clicked** when at least one interaction with its ``recommendation_id``, from
  the same customer, has a click event type; **converted** likewise with a take-up event type
  (apply, purchase, hold by default). Each exposure counts at most once, however many events
  answer it, and interactions are unique on ``event_id``, so replayed events never count twice;
- **CTR** = clicked exposures / exposures; **conversion** = converted exposures / exposures;
- each arm against control: difference of proportions with a 95% Wald interval
  ``d ± 1.96·sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)`` and a two-sided two-proportion z-test with the
  pooled proportion;
- **sample-ratio mismatch**: chi-square goodness of fit of unique customers per arm against the
  arms' weights; ``warn`` below p 0.01, ``alert`` below p 0.001.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from scipy import stats
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from app.db.models import Customer, Exposure, Interaction
from app.schemas.experiments import (
    ComparisonPublic,
    ResultsPublic,
    SrmPublic,
    VariantResultPublic,
)
from app.services.experiments.definitions import get_experiment, variants_of

CLICK_EVENT_TYPES: tuple[str, ...] = ("click",)
SRM_WARN = 0.01
SRM_ALERT = 0.001
MIN_EXPECTED = 5.0  # below this expected count per arm the chi-square approximation is unsafe
Z95 = float(stats.norm.ppf(0.975))

DEFINITIONS = {
    "exposures": "served lists logged with this experiment",
    "customers": "distinct customers among the arm's exposures",
    "ctr": "exposures answered by >= 1 click event with their recommendation_id / exposures",
    "conversion": "exposures answered by >= 1 take-up event (apply, purchase, hold) / exposures",
    "ci": "95% Wald interval of the difference of proportions (arm - control)",
    "p_value": "two-sided two-proportion z-test, pooled proportion",
    "srm": "chi-square of unique customers per arm vs weights; warn p<0.01, alert p<0.001",
}


@dataclass(frozen=True, slots=True)
class ArmCounts:
    """Raw counts of one arm (the input of :func:`summarise`)."""

    variant: str
    role: str
    weight: float
    exposures: int
    customers: int
    clicked: int
    converted: int


def _rate(x: int, n: int) -> float | None:
    return x / n if n > 0 else None


def compare(metric: str, x_c: int, n_c: int, x_t: int, n_t: int) -> ComparisonPublic:
    """Arm ``t`` against control ``c``: difference, Wald 95% interval, pooled z-test."""
    p_c, p_t = x_c / n_c, x_t / n_t
    diff = p_t - p_c
    half = Z95 * math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    pooled = (x_c + x_t) / (n_c + n_t)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    z = diff / se0 if se0 > 0 else None
    p_value = float(2 * stats.norm.sf(abs(z))) if z is not None else None
    return ComparisonPublic(
        metric=metric,
        control_rate=p_c,
        variant_rate=p_t,
        difference=diff,
        ci_low=diff - half,
        ci_high=diff + half,
        relative_lift=diff / p_c if p_c > 0 else None,
        z=z,
        p_value=p_value,
    )


def srm_check(observed: Sequence[int], weights: Sequence[float]) -> SrmPublic:
    """Chi-square goodness of fit of ``observed`` customers per arm against ``weights``."""
    total = sum(observed)
    share = [w / sum(weights) for w in weights]
    expected = [total * s for s in share]
    if total == 0 or min(expected) < MIN_EXPECTED:
        return SrmPublic(
            chi_square=None,
            p_value=None,
            status="insufficient",
            message=f"too few customers for the check ({total}); "
            f"each arm needs an expected count of at least {MIN_EXPECTED:g}",
        )
    result = stats.chisquare(list(observed), f_exp=expected)
    chi2, p = float(result.statistic), float(result.pvalue)
    if p < SRM_ALERT:
        status, message = "alert", "sample ratio mismatch: assignment or logging is broken"
    elif p < SRM_WARN:
        status, message = "warn", "possible sample ratio mismatch: check assignment and logging"
    else:
        status, message = "ok", "customers split as the weights say"
    return SrmPublic(chi_square=chi2, p_value=p, status=status, message=f"{message} (p = {p:.3g})")


def summarise(
    key: str, status: str, arms: Sequence[ArmCounts], now: datetime | None = None
) -> ResultsPublic:
    """Rates, comparisons against control and the SRM check from raw counts."""
    control = next(a for a in arms if a.role == "control")
    total_weight = sum(a.weight for a in arms)
    rows = []
    for arm in arms:
        comparisons = []
        if arm is not control and arm.exposures > 0 and control.exposures > 0:
            comparisons = [
                compare("ctr", control.clicked, control.exposures, arm.clicked, arm.exposures),
                compare(
                    "conversion",
                    control.converted,
                    control.exposures,
                    arm.converted,
                    arm.exposures,
                ),
            ]
        rows.append(
            VariantResultPublic(
                variant=arm.variant,
                role=arm.role,
                expected_share=arm.weight / total_weight,
                exposures=arm.exposures,
                customers=arm.customers,
                clicked_exposures=arm.clicked,
                converted_exposures=arm.converted,
                ctr=_rate(arm.clicked, arm.exposures),
                conversion=_rate(arm.converted, arm.exposures),
                comparisons=comparisons,
            )
        )
    return ResultsPublic(
        experiment=key,
        status=status,
        control=control.variant,
        computed_at=now or datetime.now(UTC),
        definitions=DEFINITIONS,
        variants=rows,
        srm=srm_check([a.customers for a in arms], [a.weight for a in arms]),
    )


def count_outcomes(
    session: Session,
    key: str,
    conversion_event_types: Sequence[str],
    click_event_types: Sequence[str] = CLICK_EVENT_TYPES,
) -> dict[str, tuple[int, int, int, int]]:
    """``{variant: (exposures, customers, clicked, converted)}`` in one aggregate query."""
    clicked = func.max(case((Interaction.event_type.in_(list(click_event_types)), 1), else_=0))
    converted = func.max(
        case((Interaction.event_type.in_(list(conversion_event_types)), 1), else_=0)
    )
    outcomes = (
        select(
            Exposure.recommendation_id.label("recommendation_id"),
            clicked.label("clicked"),
            converted.label("converted"),
        )
        .join(Interaction, Interaction.recommendation_id == Exposure.recommendation_id)
        # An event counts only when it comes from the customer the list was shown to.
        .join(
            Customer,
            and_(
                Customer.id == Interaction.customer_pk, Customer.customer_id == Exposure.customer_id
            ),
        )
        .where(Exposure.experiment == key)
        .group_by(Exposure.recommendation_id)
        .subquery()
    )
    query = (
        select(
            Exposure.variant,
            func.count(Exposure.id),
            func.count(func.distinct(Exposure.customer_id)),
            func.coalesce(func.sum(outcomes.c.clicked), 0),
            func.coalesce(func.sum(outcomes.c.converted), 0),
        )
        .outerjoin(outcomes, outcomes.c.recommendation_id == Exposure.recommendation_id)
        .where(Exposure.experiment == key)
        .group_by(Exposure.variant)
    )
    return {
        str(variant): (int(n), int(customers), int(clicks), int(conversions))
        for variant, n, customers, clicks, conversions in session.execute(query)
    }


def served_by(session: Session, key: str) -> dict[str, dict[str, int]]:
    """``{variant: {strategy: exposures}}``: what actually served each arm."""
    query = (
        select(Exposure.variant, Exposure.strategy, func.count(Exposure.id))
        .where(Exposure.experiment == key)
        .group_by(Exposure.variant, Exposure.strategy)
    )
    out: dict[str, dict[str, int]] = {}
    for variant, strategy, n in session.execute(query):
        out.setdefault(str(variant), {})[str(strategy)] = int(n)
    return out


def experiment_results(
    session: Session,
    key: str,
    conversion_event_types: Sequence[str],
    click_event_types: Sequence[str] = CLICK_EVENT_TYPES,
) -> ResultsPublic:
    """The results of experiment ``key`` (any status) from the logs as they are now."""
    experiment = get_experiment(session, key)
    counts = count_outcomes(session, key, conversion_event_types, click_event_types)
    arms = [
        ArmCounts(v.name, v.role, v.weight, *counts.get(v.name, (0, 0, 0, 0)))
        for v in variants_of(session, experiment)
    ]
    results = summarise(key, experiment.status, arms)
    strategies = served_by(session, key)
    for row in results.variants:
        row.served_by = strategies.get(row.variant, {})
    return results


def results_chart(results: ResultsPublic) -> bytes:
    """A PNG: CTR and conversion per arm with 95% Wald intervals of each rate."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4), dpi=100)
    names = [v.variant for v in results.variants]
    for index, (metric, label) in enumerate(
        (("ctr", "click-through rate"), ("conversion", "conversion"))
    ):
        axes = figure.add_subplot(1, 2, index + 1)
        rates, errors = [], []
        for v in results.variants:
            rate = getattr(v, metric) or 0.0
            n = v.exposures
            rates.append(rate)
            errors.append(Z95 * math.sqrt(rate * (1 - rate) / n) if n else 0.0)
        colours = ["#4c72b0" if v.role == "control" else "#dd8452" for v in results.variants]
        axes.bar(names, rates, yerr=errors, capsize=4, color=colours)
        axes.set_title(label)
        axes.set_ylabel("per exposure")
    figure.suptitle(f"{results.experiment}: SRM {results.srm.status}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
