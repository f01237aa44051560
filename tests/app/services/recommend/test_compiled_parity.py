"""Property: the compiled list assembly gives the live service's list, item for item.

The same request goes to two services over the same catalogue, profile and model, one with
``compiled_lists`` on (the default) and one with it off (the general path: a partition of the
scores, then the cap walk, backfill and removal accounting in Python). Scores come from a small
set of values, so ties at the candidate line and inside lists are common; some are NaN or
infinite; the model lacks some products; categories, caps, holdings and pools vary.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services.model_store import LoadedModel, ModelStore
from app.services.profiles import Profile
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.promotions import PromotionBook
from app.services.recommend.service import RecommendationService, RecommendRequest
from app.settings import Settings
from recommenders.base import VectorModel
from recommenders.dataset import IdMap
from tests.app.services.recommend import bank

NOW = bank.NOW
BASE_SETTINGS = Settings(
    environment="test",
    placements_showing_held=["portfolio"],
    _env_file=None,  # type: ignore[call-arg]
)
CATEGORIES = ["deposit", "fund", "insurance", "loan", "card"]
VALUES = [-1.0, -0.5, 0.0, -0.0, 0.25, 0.5, 1.0, 2.0, float("nan"), float("inf"), float("-inf")]


class _FixedModel:
    """Scores one row, the same on every call (so both services see the same scores)."""

    algorithm = "als"

    def __init__(self, products: list[str], row: list[float], knows_customer: bool) -> None:
        self.customer_ids = IdMap(["A" if knows_customer else "other"])
        self.product_ids = IdMap(products)
        self.cold_inputs = frozenset({"history"})  # folds a new customer in from holdings
        self._row = np.asarray([row], dtype=np.float32)

    def score(self, customers: np.ndarray) -> np.ndarray:
        return self._row.copy()

    def score_cold(self, history: object, features: object = None) -> np.ndarray:
        return self._row.copy()


class _FactorModel(VectorModel):
    """A factor model with fixed arrays: its scores are ``factors · product factors`` plus
    the biases it has, added by the kernel on the compiled path and by numpy on the other."""

    algorithm = "als"

    def __init__(self, products: list[str], case: dict) -> None:  # type: ignore[type-arg]
        super().__init__()
        self.customer_ids = IdMap(["A"])
        self.product_ids = IdMap(products)
        self.customer_factors = np.asarray([case["customer_factors"]], dtype=np.float32)
        self.product_factors = np.asarray(case["product_factors"], dtype=np.float32)
        if case["customer_bias"] is not None:
            self.customer_bias = np.asarray([case["customer_bias"]], dtype=np.float32)
        if case["product_bias"] is not None:
            self.product_bias = np.asarray(case["product_bias"], dtype=np.float32)

    def _fit(self, *args: object, **kwargs: object) -> None:  # the arrays are given
        raise NotImplementedError


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 60))
    pids = [f"P{i:02d}" for i in range(n)]
    n_cats = draw(st.integers(1, 5))
    products = [
        (
            pid,
            pid,
            CATEGORIES[draw(st.integers(0, n_cats - 1))],
            f"R{draw(st.integers(1, 5))}",
            "active" if draw(st.integers(0, 9)) else "retired",
        )
        for pid in pids
    ]
    known = draw(st.lists(st.sampled_from(pids), min_size=1, unique=True))
    weights = st.sampled_from(VALUES[:8]) if draw(st.booleans()) else st.sampled_from(VALUES)
    dims = draw(st.integers(1, 3))
    factor = st.sampled_from([-1.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.0, 1.5e-6, 3.3333333])
    bias = st.one_of(st.none(), factor)
    return {
        "factor_model": draw(st.booleans()),
        "customer_factors": [draw(factor) for _ in range(dims)],
        "product_factors": [[draw(factor) for _ in range(dims)] for _ in known],
        "customer_bias": draw(bias),
        "product_bias": None if draw(st.booleans()) else [draw(factor) for _ in known],
        "products": products,
        "held": frozenset(draw(st.lists(st.sampled_from(pids), max_size=n // 2))),
        "risk": draw(st.integers(1, 5)),
        "segment": draw(st.sampled_from([None, "mass", "affluent"])),
        "popularity": {p: float(draw(st.integers(0, 4))) for p in pids},
        "segment_pop": {"mass": {p: float(draw(st.integers(0, 3))) for p in pids[: n // 2]}},
        "known": known,
        "row": [draw(weights) for _ in known],
        "k": draw(st.integers(1, 20)),
        "cap": draw(st.sampled_from([None, 1, 2, 3])),
        "placement": draw(st.sampled_from([None, "home", "portfolio"])),
        "explain": draw(st.booleans()),
        "knows_customer": draw(st.booleans()),
    }


def _service(case: dict, compiled: bool) -> RecommendationService:  # type: ignore[type-arg]
    catalog = CatalogSnapshot.build(case["products"], case["popularity"], case["segment_pop"])
    store = ModelStore()
    model: object = (
        _FactorModel(case["known"], case)
        if case["factor_model"]
        else _FixedModel(case["known"], case["row"], case["knows_customer"])
    )
    store.install(LoadedModel.wrap("als", "als-v", model))
    settings_ = BASE_SETTINGS.model_copy(
        update={"category_cap": case["cap"], "compiled_lists": compiled, "default_strategy": "als"}
    )
    return RecommendationService(
        settings_, CatalogHolder(None, catalog), store, PromotionBook(None, ())
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_compiled_lists_equal_the_general_path(case: dict) -> None:  # type: ignore[type-arg]
    profile = Profile(
        customer_id="A",
        segment=case["segment"],
        risk_class=case["risk"],
        risk_valid_until=None,
        consent=True,
        held=case["held"],
        attributes={},
    )
    request = RecommendRequest(k=case["k"], placement=case["placement"], explain=case["explain"])
    fast, slow = _service(case, True), _service(case, False)
    if not case["knows_customer"] and not case["factor_model"]:
        # A new customer's first list is folded in by the general path, which keeps the scores;
        # the compiled path answers from the second request on.
        first = fast.recommend("A", profile, request, now=NOW)
        assert fast._tables is None
        assert first.items == slow.recommend("A", profile, request, now=NOW).items
    got = fast.recommend("A", profile, request, now=NOW)
    want = slow.recommend("A", profile, request, now=NOW)
    assert fast._tables is not None  # the compiled path answered
    assert slow._tables is None
    assert [tuple(i) for i in got.items] == [tuple(i) for i in want.items]
    assert got.removed == want.removed
    assert (got.strategy, got.model_version, got.served_from, got.basis, got.risk_class) == (
        want.strategy,
        want.model_version,
        want.served_from,
        want.basis,
        want.risk_class,
    )


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(width=32, allow_nan=False, allow_infinity=False),
            st.integers(-(10**7), 10**7).map(lambda i: i / 2**7),  # exact halves at 1e-6 steps
            st.sampled_from([0.0078125, -0.0078125, 0.5e-6, 1.5e-6, -0.0, 1e9, 3e38]),
        ),
        max_size=30,
    )
)
def test_vectorised_rounding_is_pythons_round(values: list[float]) -> None:
    from app.services.recommend.kernel import round6

    arr = np.asarray(values, dtype=np.float32)
    got = round6(arr)
    want = [round(x, 6) for x in arr.tolist()]
    assert got == want
    assert [str(x) for x in got] == [str(x) for x in want]  # -0.0 stays -0.0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(width=32, allow_nan=False, allow_infinity=False),
            st.integers(-(10**7), 10**7).map(lambda i: i / 2**7),
            st.sampled_from([0.0078125, -0.0078125, 0.5e-6, 1.5e-6, -0.0, 1e9, 3e38]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_the_live_kernel_rounds_like_pythons_round(values: list[float]) -> None:
    from app.services.recommend.kernel import live_list

    raw = np.asarray(values, dtype=np.float32)
    n = raw.shape[0]
    no_offset = np.full(n, -0.0, dtype=np.float32)
    no_penalty = np.zeros(n, dtype=np.float32)
    out = np.empty(3 * n, dtype=np.int64)
    scores = np.empty(n, dtype=np.float64)
    got, _, rounded = live_list(
        raw,
        no_offset,
        np.float32(-0.0),
        no_penalty,
        np.ones(n, dtype=np.bool_),
        np.zeros(n, dtype=np.int64),
        1,
        n,
        -1,
        n,
        np.arange(n, dtype=np.int64),
        np.zeros(n, dtype=np.float32),
        np.zeros(n, dtype=np.int8),
        out,
        scores,
    )
    assert got == n
    listed = (raw + no_penalty)[out[:got]].tolist()  # as gated: -0.0 + 0.0 is 0.0
    if rounded:
        want = [round(x, 6) for x in listed]
        assert [str(x) for x in scores[:got].tolist()] == [str(x) for x in want]
    else:  # the caller rounds these (round6); the kernel hands them over unchanged
        assert scores[:got].tolist() == listed
        assert any(abs(x) >= 1e9 for x in listed)
