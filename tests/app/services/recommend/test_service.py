"""The recommendation flow on the literal bank: gate, fallbacks, caps, promotions, reasons."""

from __future__ import annotations

import os
import time

import numpy as np
import scipy.sparse as sp

from app.services.model_store import LoadedModel
from app.services.profiles import Profile
from app.services.recommend.candidates import PrecomputedList
from app.services.recommend.promotions import Promotion, PromotionBook
from app.services.recommend.service import RecommendationService, RecommendRequest
from recommenders.dataset import IdMap
from recommenders.errors import ColdStartUnsupported
from tests.app.services.recommend import bank

NOW = bank.NOW


def codes(reasons: list[dict[str, str]]) -> list[str]:
    return [r["code"] for r in reasons]


def ids(service: RecommendationService, profile: Profile | None, **kw: object) -> list[str]:
    result = service.recommend(
        profile.customer_id if profile else "x", profile, RecommendRequest(**kw), now=NOW
    )  # type: ignore[arg-type]
    return [i.product_id for i in result.items]


def test_suitability_status_and_holdings(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    # C1 is C1: only R1, active, not held -> P02, P03 (P12 is suspended).
    assert sorted(ids(service, profiles["C1"], k=10)) == ["P02", "P03"]
    # C2 is C3 and holds P01, P04, P05.
    assert set(ids(service, profiles["C2"], k=10)) == {"P02", "P03", "P08", "P09", "P10"}


def test_expired_or_missing_assessment_allows_r1_only(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    for cid in ("C4", "C5"):
        levels = {p[3] for p in bank.PRODUCTS if p[0] in ids(service, profiles[cid], k=10)}
        assert levels == {"R1"}


def test_unreadable_profile_fails_closed(service: RecommendationService) -> None:
    result = service.recommend("C3", None, RecommendRequest(k=10), now=NOW)
    assert result.degraded
    assert result.items
    assert {bank.PRODUCTS[i.position][3] for i in result.items} == {"R1"}
    assert all(i.reasons[0]["code"] == "non_personalised" for i in result.items)


def test_no_consent_is_non_personalised_and_labelled(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    result = service.recommend("C6", profiles["C6"], RecommendRequest(k=5, explain=False), now=NOW)
    assert result.served_from == "fallback"
    assert result.model_version is None
    assert all([r["code"] for r in i.reasons] == ["non_personalised"] for i in result.items)
    assert "P04" not in [i.product_id for i in result.items]  # held


def test_live_scoring_reports_model_and_reasons(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    result = service.recommend("C2", profiles["C2"], RecommendRequest(k=3), now=NOW)
    assert (result.strategy, result.model_version, result.served_from) == (
        "popularity",
        "pop-v1",
        "live",
    )
    assert [i.rank for i in result.items] == [1, 2, 3]
    assert all(i.reasons[0]["code"] == "popular_in_segment" for i in result.items)
    quiet = service.recommend("C2", profiles["C2"], RecommendRequest(k=3, explain=False), now=NOW)
    assert all(i.reasons == [] for i in quiet.items)


def test_category_cap_then_backfill(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    result = ids(service, profiles["C3"], k=10)  # cap 2 per category
    assert len(result) == len(set(result))
    # C3 may see 7 products; a cap of 2 leaves one deposit out, backfill brings it back last.
    assert len(result) == 7
    deposits = [p for p in result if p in {"P01", "P02", "P03"}]
    assert len(deposits) == 3
    assert result[-1] in deposits


def test_held_products_shown_where_the_placement_allows(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    service.settings.placements_showing_held = ["portfolio"]
    shown = ids(service, profiles["C1"], k=10, placement="portfolio")
    assert {"P01", "P08"} <= set(shown)
    assert "P01" not in ids(service, profiles["C1"], k=10, placement="home")


def test_promotions_are_labelled_and_never_bypass_the_gate(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    service.promotions = PromotionBook(
        None,
        (
            Promotion("P10", None, 0.0, 1, None, None),  # pin the loan first
            Promotion("P07", None, 0.0, 1, None, None),  # R5: not for a C3 customer
            Promotion("P09", "home", 5.0, None, None, None),  # boost, home placement only
        ),
    )
    result = service.recommend(
        "C2", profiles["C2"], RecommendRequest(k=4, placement="home", explain=False), now=NOW
    )
    shown = [i.product_id for i in result.items]
    assert shown[0] == "P10"
    assert "P07" not in shown
    assert shown[1] == "P09"
    labelled = {i.product_id for i in result.items if "promotion" in codes(i.reasons)}
    assert labelled == {"P10", "P09"}
    other = service.recommend("C2", profiles["C2"], RecommendRequest(k=4, placement="app"), now=NOW)
    assert not any(
        r["code"] == "promotion" for i in other.items for r in i.reasons if i.product_id == "P09"
    )


def test_fallback_when_no_model_is_loaded(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    service.models.remove("popularity")
    result = service.recommend("C2", profiles["C2"], RecommendRequest(k=3), now=NOW)
    assert result.served_from == "fallback"
    assert result.items[0].reasons[0]["code"] == "popular_in_segment"
    assert len(result.items) == 3


class _WarmOnly:
    """A model that knows only C1 and cannot serve anyone else."""

    algorithm = "als"
    cold_inputs: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.customer_ids = IdMap(["C1"])
        self.product_ids = IdMap([p[0] for p in bank.PRODUCTS])

    def score(self, customers: np.ndarray) -> np.ndarray:
        return np.arange(len(bank.PRODUCTS), dtype=np.float32)[None, :]

    def score_cold(self, history: sp.csr_matrix, features: object = None) -> np.ndarray:
        raise ColdStartUnsupported("warm only")


def test_cold_customers_are_routed_to_a_model_that_can_serve_them(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    service.models.install(LoadedModel.wrap("als", "als-v1", _WarmOnly()))
    warm = service.recommend("C1", profiles["C1"], RecommendRequest(k=2, strategy="als"), now=NOW)
    assert (warm.strategy, warm.items[0].reasons[0]["code"]) == ("als", "collaborative")
    cold = service.recommend("C7", profiles["C7"], RecommendRequest(k=2, strategy="als"), now=NOW)
    assert cold.strategy == "popularity"
    assert cold.served_from == "live"


class _Precomputed:
    def lookup(self, customer_id: str, strategy: str) -> PrecomputedList | None:
        # Deliberately lists unsuitable, held and inactive products: the gate must drop them.
        return PrecomputedList(
            "popularity",
            "pop-v1",
            ("P07", "P01", "P12", "P09", "P02"),
            (5.0, 4.0, 3.0, 2.0, 1.0),
            (("collaborative",),) * 5,
        )


def test_precomputed_lists_pass_the_same_gate(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    service.precomputed = _Precomputed()
    result = service.recommend("C2", profiles["C2"], RecommendRequest(k=2), now=NOW)
    assert result.served_from == "precomputed"
    assert [i.product_id for i in result.items] == ["P09", "P02"]


def test_cached_gate_follows_profile_changes_and_expiry(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    from dataclasses import replace
    from datetime import timedelta

    c2 = profiles["C2"]
    first = ids(service, c2, k=10)
    assert ids(service, c2, k=10) == first  # served from the cached gate row
    # A changed profile is a new object: the gate is rebuilt (P01 no longer held).
    assert "P01" in ids(service, replace(c2, held=frozenset({"P04", "P05"})), k=10)
    # The same profile object after its assessment expired: R1 only.
    assert c2.risk_valid_until is not None
    later = service.recommend(
        "C2", c2, RecommendRequest(k=10), now=c2.risk_valid_until + timedelta(days=1)
    )
    assert {p[3] for p in bank.PRODUCTS if p[0] in {i.product_id for i in later.items}} == {"R1"}


def test_recommendation_ids_are_distinct_128_bit_hex(
    service: RecommendationService, profiles: dict[str, Profile]
) -> None:
    seen = {
        service.recommend("C2", profiles["C2"], RecommendRequest(k=3), now=NOW).recommendation_id
        for _ in range(200)
    }
    assert len(seen) == 200 and all(len(i) == 32 and int(i, 16) >= 0 for i in seen)


def test_recommendation_ids_are_unique_hex_and_reseeded_in_a_new_process() -> None:
    import re

    from app.services.recommend.service import _Ids

    ids = _Ids()
    drawn = [ids.new() for _ in range(1000)]  # several refills of the batch
    assert len(set(drawn)) == len(drawn)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in drawn)
    # Time first (milliseconds, as in a UUIDv7): later batches never sort before earlier ones.
    stamps = [int(i[:12], 16) for i in drawn]
    assert stamps == sorted(stamps)
    assert abs(stamps[0] - time.time_ns() // 1_000_000) < 60_000
    parent_next = ids._ready[-1]
    # A forked child must not hand out the IDs its parent had drawn (nor their sequel).
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report 300 IDs and leave at once
        try:
            os.write(write, "".join(ids.new() for _ in range(300)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    child = [text[i : i + 32] for i in range(0, len(text), 32)]
    assert len(child) == 300
    assert parent_next not in child and not set(child) & set(drawn)
    assert ids.new() == parent_next  # the parent goes on where it was
