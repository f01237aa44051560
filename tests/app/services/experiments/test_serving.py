"""A running experiment's arm serves the request, through the same policy gate, and is logged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.services.experiments.assignment import (
    Arm,
    ExperimentBook,
    ExperimentPlan,
    slot_bounds,
    traffic_buckets,
)
from app.services.exposures import ExposureLog
from app.services.model_store import LoadedModel, ModelStore
from app.services.profiles import ProfileCache
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.flow import ServingState, recommend_for_customer
from app.services.recommend.promotions import PromotionBook
from app.services.recommend.service import RecommendationService, RecommendRequest
from app.settings import Settings
from tests.app.services.recommend import bank
from tests.app.services.recommend.conftest import bank_catalog, bank_profiles

LEVEL = {p[0]: int(p[3][1]) for p in bank.PRODUCTS}
ACTIVE = {p[0] for p in bank.PRODUCTS if p[4] == "active"}


class Captured(ExposureLog):
    """An exposure log that keeps the built rows in memory."""

    def __init__(self) -> None:
        super().__init__(None)
        self.rows: list[dict[str, Any]] = []

    def record_later(self, build: Any, *args: Any) -> None:
        self.rows.append(build(*args))


@pytest.fixture
def state() -> ServingState:
    model = bank.fit_popularity()
    store = ModelStore()
    # Two strategies with distinct versions, so the response shows which arm served.
    store.install(LoadedModel.wrap("popularity", "pop-v1", model))
    store.install(LoadedModel.wrap("als", "als-v1", model))
    settings = Settings(environment="test", category_cap=2, _env_file=None)  # type: ignore[call-arg]
    service = RecommendationService(
        settings, CatalogHolder(None, bank_catalog()), store, PromotionBook(None)
    )
    profiles = ProfileCache(None, validity_months=24)
    for profile in bank_profiles().values():
        profiles.put(profile)
    bounds = slot_bounds([1, 1])
    plan = ExperimentPlan(
        "home-ab",
        "serving-test",
        "running",
        traffic_buckets(1.0),
        frozenset({"home"}),
        (
            Arm("control", "control", "popularity", None, None, bounds[0]),
            Arm("treatment", "treatment", "als", None, 3, bounds[1]),
        ),
    )
    return ServingState(service, profiles, Captured(), ExperimentBook(None, (plan,)))


def serve(state: ServingState, customer_id: str, **request: Any) -> Any:
    return asyncio.run(recommend_for_customer(state, customer_id, RecommendRequest(**request)))


def test_each_customer_is_served_by_their_arm(state: ServingState) -> None:
    assert state.experiments is not None
    plan = state.experiments.current[0]
    seen = set()
    longest: dict[str, int] = {}
    for customer_id, _, risk, _, consent in bank.CUSTOMERS:
        arm = plan.assign(customer_id)
        assert arm is not None
        result = serve(state, customer_id, placement="home", k=5)
        assert (result.experiment, result.variant) == ("home-ab", arm.variant)
        seen.add(arm.variant)
        if consent:
            assert result.strategy == arm.strategy
            assert result.model_version == ("als-v1" if arm.strategy == "als" else "pop-v1")
        # The arm's k caps the list (a narrow risk class may leave fewer suitable products).
        assert 0 < len(result.items) <= (3 if arm.variant == "treatment" else 5)
        longest[arm.variant] = max(longest.get(arm.variant, 0), len(result.items))
        for item in result.items:  # the arm never bypasses the gate
            assert item.product_id in ACTIVE
        if risk is not None and customer_id not in ("C4",):
            assert all(LEVEL[i.product_id] <= int(risk[1]) for i in result.items)
    assert seen == {"control", "treatment"}
    assert longest == {"control": 5, "treatment": 3}
    rows = state.exposures.rows  # type: ignore[attr-defined]
    assert {(r["experiment"], r["placement"]) for r in rows} == {("home-ab", "home")}
    assert {r["variant"] for r in rows} == seen


def test_other_placements_and_admin_overrides_stay_outside(state: ServingState) -> None:
    assert serve(state, "C2", placement="offers").experiment is None
    forced = serve(state, "C2", placement="home", strategy="popularity")
    assert (forced.experiment, forced.variant, forced.strategy) == (None, None, "popularity")
