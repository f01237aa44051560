"""Removal accounting: which products the rules kept off a list, each with the first rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings

from app.services.model_store import LoadedModel, ModelStore
from app.services.profiles import Profile
from app.services.recommend.candidates import PrecomputedList
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.promotions import PromotionBook
from app.services.recommend.removals import policy_version
from app.services.recommend.service import RecommendationService, RecommendRequest
from app.settings import Settings
from recommenders.policy import REMOVAL_RULES, removal_codes
from tests.app.services.recommend import bank
from tests.app.services.recommend.test_policy_property import (
    BASE_SETTINGS,
    _AnyList,
    _RandomModel,
    scenario,
)

NOW = bank.NOW

# product_id, category, risk level, status, popularity (the fallback ranks by it)
CRAFTED = [
    ("A01", "fund", "R1", "retired", 10.0),
    ("A02", "fund", "R5", "retired", 9.5),  # retired and held: inactive comes first
    ("A03", "deposit", "R1", "active", 9.0),  # held
    ("A04", "fund", "R5", "active", 8.5),  # held and unsuitable: held comes first
    ("A05", "fund", "R4", "active", 8.0),  # above C2
    ("A06", "deposit", "R1", "active", 7.0),
    ("A07", "deposit", "R1", "active", 6.0),
    ("A08", "deposit", "R1", "active", 5.0),  # third deposit: the cap of 2 skips it
    ("A09", "insurance", "R2", "active", 4.0),
    ("A10", "loan", "R1", "active", 3.0),
    ("A11", "card", "R1", "active", 2.0),
    ("A12", "card", "R2", "active", 1.0),
]


def crafted_service(cap: int | None = 2, precomputed: object = None) -> RecommendationService:
    catalog = CatalogSnapshot.build(
        [(p, p, c, r, s) for p, c, r, s, _ in CRAFTED], {p[0]: p[4] for p in CRAFTED}
    )
    settings = Settings(environment="test", category_cap=cap, _env_file=None)  # type: ignore[call-arg]
    return RecommendationService(
        settings,
        CatalogHolder(None, catalog),
        ModelStore(),
        PromotionBook(None),
        precomputed,  # type: ignore[arg-type]
    )


def profile(risk: int = 2, valid: bool = True, consent: bool = True) -> Profile:
    return Profile(
        customer_id="X",
        segment=None,
        risk_class=risk,
        risk_valid_until=NOW + timedelta(days=(90 if valid else -1)),
        consent=consent,
        held=frozenset({"A02", "A03", "A04"}),
    )


def test_each_rule_is_named_for_the_products_it_removed() -> None:
    result = crafted_service().recommend("X", profile(), RecommendRequest(k=6), now=NOW)
    assert [i.product_id for i in result.items] == ["A06", "A07", "A09", "A10", "A11", "A12"]
    assert result.removed == [
        ("A01", "inactive"),
        ("A02", "inactive"),
        ("A03", "held"),
        ("A04", "held"),
        ("A05", "suitability"),
        ("A08", "category_cap"),
    ]
    assert result.basis == "personalised" and result.risk_class == 2


def test_expired_assessment_is_unassessed_risk() -> None:
    result = crafted_service().recommend("X", profile(valid=False), RecommendRequest(k=6), now=NOW)
    assert dict(result.removed)["A05"] == "unassessed_risk"
    assert dict(result.removed)["A04"] == "held"
    assert result.risk_class == 0


def test_unreadable_profile_is_fail_closed_and_unassessed() -> None:
    result = crafted_service().recommend("X", None, RecommendRequest(k=6), now=NOW)
    assert result.basis == "fail_closed"
    removed = dict(result.removed)
    assert removed["A05"] == "unassessed_risk" and removed["A01"] == "inactive"
    assert "A03" in {i.product_id for i in result.items}  # holdings unknown: nothing held


def test_no_consent_is_a_basis_not_a_removal() -> None:
    result = crafted_service().recommend(
        "X", profile(consent=False), RecommendRequest(k=6), now=NOW
    )
    assert result.basis == "non_personalised"
    assert {rule for _, rule in result.removed} <= set(REMOVAL_RULES[1:]) | {"category_cap"}
    assert dict(result.removed)["A05"] == "suitability"


def test_cap_removals_are_not_claimed_when_backfill_serves_them() -> None:
    # k=8 leaves the capped deposit A08 as the only way to fill the list: it is served last.
    result = crafted_service().recommend("X", profile(), RecommendRequest(k=8), now=NOW)
    assert result.items[-1].product_id == "A08"
    assert "A08" not in dict(result.removed)


def test_without_a_cap_nothing_is_category_capped() -> None:
    result = crafted_service(cap=None).recommend("X", profile(), RecommendRequest(k=6), now=NOW)
    assert "category_cap" not in {rule for _, rule in result.removed}


def test_stale_precomputed_items_are_removed_by_the_rule_they_break_now() -> None:
    listed = ("A12", "A03", "A05", "A06")  # A03 bought since, A05 above the class now
    source = _AnyList(PrecomputedList("fusion", "v1", listed, (4.0, 3.0, 2.0, 1.0)))
    service = crafted_service(precomputed=source)
    result = service.recommend("X", profile(), RecommendRequest(k=3), now=NOW)
    assert result.served_from == "precomputed"
    assert [i.product_id for i in result.items][:2] == ["A12", "A06"]
    assert result.removed[:2] == [("A03", "held"), ("A05", "suitability")]


def test_policy_version_is_stable_and_follows_the_rule_settings() -> None:
    base = Settings(environment="test", _env_file=None)  # type: ignore[call-arg]
    assert policy_version(base) == policy_version(base.model_copy())
    assert len(policy_version(base)) <= 32  # the column's width
    changed = [
        base.model_copy(update={"category_cap": 1}),
        base.model_copy(update={"placements_showing_held": ["portfolio"]}),
        base.model_copy(update={"risk_assessment_validity_months": 12}),
    ]
    assert len({policy_version(base), *(policy_version(s) for s in changed)}) == 4
    # Not the serving knobs that do not change who may see what.
    assert policy_version(base.model_copy(update={"fast_lane": False})) == policy_version(base)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_removed_never_holds_a_served_item_and_names_a_rule_it_breaks(case: dict) -> None:  # type: ignore[type-arg]
    catalog = CatalogSnapshot.build(case["products"], case["popularity"], case["segment_pop"])
    prof: Profile | None = case["profile"]
    store = ModelStore()
    precomputed = None
    customers = [prof.customer_id] if (prof and case["model_knows"]) else ["Z"]
    if case["strategy"] in ("random", "fusion"):
        algorithm = "als" if case["strategy"] == "random" else "fusion"
        model = _RandomModel(
            algorithm, customers, case["model_products"], case["seed"], case["cold"]
        )
        store.install(LoadedModel.wrap(algorithm, f"{algorithm}-v", model))
    elif case["strategy"] == "precomputed":
        listed = tuple(case["model_products"])
        precomputed = _AnyList(PrecomputedList("fusion", "v", listed, (1.0,) * len(listed)))
    service = RecommendationService(
        BASE_SETTINGS.model_copy(update={"category_cap": case["cap"]}),
        CatalogHolder(None, catalog),
        store,
        PromotionBook(None, case["promos"]),
        precomputed,
    )
    request = RecommendRequest(k=case["k"], placement=case["placement"])
    result = service.recommend(prof.customer_id if prof else "A", prof, request, now=NOW)

    shown = {i.product_id for i in result.items}
    removed = dict(result.removed)
    assert len(removed) == len(result.removed)  # each product once
    assert not shown & set(removed)
    exclude_held = case["placement"] != "portfolio"
    held = prof.held if prof else frozenset()
    risk = prof.effective_risk_class(NOW) if prof else 0
    for pid, rule in removed.items():
        pos = catalog.index[pid]
        code = removal_codes(
            risk,
            catalog.risk_level[[pos]],
            catalog.active[[pos]],
            [pid in held],  # type: ignore[arg-type]
            exclude_held=exclude_held,
        )[0]
        if rule == "category_cap":
            assert code == 0 and case["cap"] is not None
        else:
            assert REMOVAL_RULES[code] == rule
    # Every gate-blocked product in the top k of popularity is accounted for.
    for pos in catalog.popular_order[: case["k"]].tolist():
        pid = catalog.product_ids[pos]
        code = removal_codes(
            risk,
            catalog.risk_level[[pos]],
            catalog.active[[pos]],
            [pid in held],  # type: ignore[arg-type]
            exclude_held=exclude_held,
        )[0]
        if code:
            assert removed.get(pid) == REMOVAL_RULES[code]


@pytest.mark.parametrize("k", [1, 3, 10])
def test_bank_lists_never_remove_what_they_serve(
    service: RecommendationService, profiles: dict[str, Profile], k: int
) -> None:
    for cid, prof in profiles.items():
        result = service.recommend(cid, prof, RecommendRequest(k=k), now=NOW)
        assert not {i.product_id for i in result.items} & {p for p, _ in result.removed}
