"""In-memory serving state built from the literal bank (no database needed)."""

from __future__ import annotations

import pytest

from app.services.model_store import LoadedModel, ModelStore
from app.services.profiles import Profile
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.promotions import PromotionBook
from app.services.recommend.service import RecommendationService
from app.settings import Settings
from recommenders.policy import add_months, parse_level
from tests.app.services.recommend import bank


def bank_catalog() -> CatalogSnapshot:
    popularity: dict[str, float] = {}
    segments: dict[str, dict[str, float]] = {}
    segment_of = {c[0]: c[1] for c in bank.CUSTOMERS}
    for cid, held in bank.HOLDINGS.items():
        for pid in held:
            popularity[pid] = popularity.get(pid, 0) + 1
            seg = segments.setdefault(segment_of[cid], {})
            seg[pid] = seg.get(pid, 0) + 1
    return CatalogSnapshot.build(list(bank.PRODUCTS), popularity, segments)


def bank_profiles() -> dict[str, Profile]:
    return {
        cid: Profile(
            customer_id=cid,
            segment=segment,
            risk_class=parse_level(risk, "C"),
            risk_valid_until=add_months(assessed, 24) if assessed else None,
            consent=consent,
            held=frozenset(bank.HOLDINGS.get(cid, [])),
            attributes={"segment": segment, "risk_class": risk},
        )
        for cid, segment, risk, assessed, consent in bank.CUSTOMERS
    }


@pytest.fixture(scope="session")
def popularity_model() -> object:
    return bank.fit_popularity()


@pytest.fixture
def settings() -> Settings:
    return Settings(environment="test", category_cap=2, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def service(settings: Settings, popularity_model: object) -> RecommendationService:
    store = ModelStore()
    store.install(LoadedModel.wrap("popularity", "pop-v1", popularity_model))
    return RecommendationService(
        settings, CatalogHolder(None, bank_catalog()), store, PromotionBook(None)
    )


@pytest.fixture
def profiles() -> dict[str, Profile]:
    return bank_profiles()
