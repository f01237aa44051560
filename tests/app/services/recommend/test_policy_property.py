"""Property: whatever the customer, catalogue, holdings, strategy or campaign, no list ever holds
an unsuitable, inactive or held product, and lists are filled to k when enough products qualify.

The models here are adversarial: they score at random, ignore the ``allowed`` mask and know
products the catalogue does not; the precomputed source lists anything. Only the gate stands
between them and the response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services.model_store import LoadedModel, ModelStore
from app.services.profiles import Profile
from app.services.recommend.candidates import PrecomputedList
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.promotions import Promotion, PromotionBook
from app.services.recommend.service import RecommendationService, RecommendRequest
from app.settings import Settings
from recommenders.dataset import IdMap
from recommenders.errors import ColdStartUnsupported
from recommenders.policy import max_allowed_level
from tests.app.services.recommend import bank

NOW = bank.NOW
# Built once: constructing settings reads the environment, which is slow per example.
BASE_SETTINGS = Settings(
    environment="test",
    placements_showing_held=["portfolio"],
    _env_file=None,  # type: ignore[call-arg]
)
CATEGORIES = ["deposit", "fund", "insurance", "loan"]
STATUSES = ["active", "active", "active", "draft", "suspended", "retired"]


class _RandomModel:
    def __init__(
        self, algorithm: str, customers: list[str], products: list[str], seed: int, cold: bool
    ) -> None:
        self.algorithm = algorithm
        self.customer_ids = IdMap(customers)
        self.product_ids = IdMap(products)
        self.cold_inputs = frozenset({"history"}) if cold else frozenset()
        self.member_names = ("als", "content")
        self._rng = np.random.default_rng(seed)

    def _row(self) -> np.ndarray:
        return self._rng.normal(size=(1, len(self.product_ids))).astype(np.float32)

    def score(self, customers: np.ndarray) -> np.ndarray:
        return self._row()

    def score_cold(self, history: object, features: object = None) -> np.ndarray:
        if not self.cold_inputs:
            raise ColdStartUnsupported("no")
        return self._row()

    def recommend_explained(
        self, customers: np.ndarray, k: int, allowed: object = None
    ) -> SimpleNamespace:
        row = self._row()[0]
        order = np.argsort(-row)[:k]  # ignores ``allowed`` on purpose
        parts = self._rng.random((1, order.size, 2)).astype(np.float32)
        return SimpleNamespace(
            indices=order[None, :].astype(np.int32),
            scores=row[order][None, :],
            contributions=parts,
            members=self.member_names,
        )


@dataclass
class _AnyList:
    entry: PrecomputedList | None

    def lookup(self, customer_id: str, strategy: str) -> PrecomputedList | None:
        return self.entry


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 14))
    pids = [f"P{i:02d}" for i in range(n)]
    products = [
        (
            pid,
            pid,
            draw(st.sampled_from(CATEGORIES)),
            f"R{draw(st.integers(0, 5))}",
            draw(st.sampled_from(STATUSES)),
        )
        for pid in pids
    ]
    held = frozenset(draw(st.lists(st.sampled_from(pids), max_size=n)))
    valid_until = draw(st.sampled_from([None, NOW - timedelta(days=1), NOW + timedelta(days=99)]))
    profile = Profile(
        customer_id=draw(st.sampled_from(["A", "B"])),
        segment=draw(st.sampled_from([None, "mass", "affluent"])),
        risk_class=draw(st.integers(0, 5)),
        risk_valid_until=valid_until,
        consent=draw(st.booleans()),
        held=held,
        attributes={},
    )
    popularity = {p: float(draw(st.integers(0, 5))) for p in pids}
    segment_pop = {"mass": {p: float(draw(st.integers(0, 3))) for p in pids}}
    strategy = draw(st.sampled_from(["none", "random", "fusion", "precomputed"]))
    model_products = draw(st.lists(st.sampled_from([*pids, "X1", "X2"]), min_size=1, unique=True))
    promos = tuple(
        Promotion(
            draw(st.sampled_from([*pids, "X1"])),
            draw(st.sampled_from([None, "home"])),
            draw(st.sampled_from([0.0, 0.5, 3.0])),
            draw(st.sampled_from([None, 1, 2, 5])),
            None,
            None,
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    return {
        "products": products,
        "profile": profile if draw(st.integers(0, 9)) else None,
        "popularity": popularity,
        "segment_pop": segment_pop,
        "strategy": strategy,
        "model_products": model_products,
        "model_knows": draw(st.booleans()),
        "cold": draw(st.booleans()),
        "promos": promos,
        "k": draw(st.integers(1, 12)),
        "placement": draw(st.sampled_from([None, "home", "portfolio"])),
        "cap": draw(st.sampled_from([None, 1, 2])),
        "seed": draw(st.integers(0, 1000)),
        "explain": draw(st.booleans()),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_no_path_serves_an_unsuitable_inactive_or_held_product(case: dict) -> None:  # type: ignore[type-arg]
    catalog = CatalogSnapshot.build(case["products"], case["popularity"], case["segment_pop"])
    profile: Profile | None = case["profile"]
    store = ModelStore()
    precomputed = None
    customers = [profile.customer_id] if (profile and case["model_knows"]) else ["Z"]
    if case["strategy"] in ("random", "fusion"):
        algorithm = "als" if case["strategy"] == "random" else "fusion"
        model = _RandomModel(
            algorithm, customers, case["model_products"], case["seed"], case["cold"]
        )
        store.install(LoadedModel.wrap(algorithm, f"{algorithm}-v", model))
    elif case["strategy"] == "precomputed":
        listed = tuple(case["model_products"])
        precomputed = _AnyList(PrecomputedList("fusion", "v", listed, (1.0,) * len(listed)))
    settings_ = BASE_SETTINGS.model_copy(update={"category_cap": case["cap"]})
    service = RecommendationService(
        settings_,
        CatalogHolder(None, catalog),
        store,
        PromotionBook(None, case["promos"]),
        precomputed,
    )
    request = RecommendRequest(k=case["k"], placement=case["placement"], explain=case["explain"])
    result = service.recommend(profile.customer_id if profile else "A", profile, request, now=NOW)

    risk = profile.effective_risk_class(NOW) if profile else 0
    limit = max_allowed_level(risk)
    exclude_held = case["placement"] != "portfolio"
    held = profile.held if profile else frozenset()
    rows = {p[0]: p for p in case["products"]}
    shown = [i.product_id for i in result.items]
    assert len(shown) == len(set(shown)) <= case["k"]
    for pid in shown:
        _, _, _, level, status = rows[pid]
        assert status == "active"
        assert 1 <= int(level[1:]) <= limit
        assert not (exclude_held and pid in held)
    eligible = [
        p
        for p, (_, _, _, level, status) in rows.items()
        if status == "active" and 1 <= int(level[1:]) <= limit and not (exclude_held and p in held)
    ]
    assert len(shown) == min(case["k"], len(eligible))  # backfilled to k
    personalised = profile is not None and profile.consent
    for item in result.items:
        codes = [r["code"] for r in item.reasons]
        if not personalised:
            assert codes[0] == "non_personalised"
        assert [i.rank for i in result.items] == list(range(1, len(shown) + 1))
    promoted = {
        p.product_id
        for p in case["promos"]
        if (p.boost > 0 or p.pin_rank) and p.placement in (None, case["placement"])
    }
    for item in result.items:
        if item.product_id in promoted:
            assert "promotion" in [r["code"] for r in item.reasons]  # always labelled
    if profile is None:
        assert result.degraded
