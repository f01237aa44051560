"""Customers: consistent attributes, hidden tastes, lifecycle and activity, drawn in chunks."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from app.synth.affinity import (
    AGE_BAND_EDGES,
    CF_WEIGHT,
    INCOME_BAND_EDGES_K,
    INCOME_BANDS,
    SEGMENTS,
    profile_code,
)
from app.synth.catalogue import LATENT_DIM, N_TASTE_GROUPS, Catalogue
from app.synth.config import SECONDS_PER_DAY, SynthConfig
from app.synth.formatting import TIMESTAMP, id_width, prefixed_ids

CHANNELS = ("app", "web", "branch", "call_center")
LIFECYCLES = ("new", "active", "dormant")
CONSIDERED = 12
CHUNK = 100_000
_CUSTOMER_STREAM = 2
_YEAR = 365.25 * SECONDS_PER_DAY
# Preferred channel mix for digital and for non-digital customers.
_CHANNEL_MIX = np.array([[0.62, 0.28, 0.05, 0.05], [0.08, 0.22, 0.5, 0.2]])
# Thresholds on a latent risk appetite that give roughly 12/25/33/20/10 % in C1..C5.
_RISK_CUTS = np.array([-1.1, -0.31, 0.49, 1.2])


def draw_channels(rng: np.random.Generator, digital: npt.NDArray[np.bool_]) -> npt.NDArray[np.int8]:
    """A channel per customer (or session) from the digital or the non-digital mix."""
    uniform = rng.random(len(digital))
    cum = np.cumsum(_CHANNEL_MIX, axis=1)
    channel = np.where(
        digital,
        np.searchsorted(cum[0], uniform, side="right"),
        np.searchsorted(cum[1], uniform, side="right"),
    )
    return np.minimum(channel, len(CHANNELS) - 1).astype(np.int8)


@dataclass(frozen=True)
class Population:
    """Every customer as parallel arrays (one row per customer)."""

    age: npt.NDArray[np.int16]
    income_band: npt.NDArray[np.int8]
    segment: npt.NDArray[np.int8]
    risk_tolerance: npt.NDArray[np.int8]
    risk_class: npt.NDArray[np.int8]
    assessed_at: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int8]
    consent: npt.NDArray[np.bool_]
    tenure_years: npt.NDArray[np.float32]
    digital: npt.NDArray[np.bool_]
    dependants: npt.NDArray[np.int8]
    lifecycle: npt.NDArray[np.int8]
    active_from: npt.NDArray[np.int64]
    active_to: npt.NDArray[np.int64]
    activity: npt.NDArray[np.float32]
    wealth: npt.NDArray[np.float32]
    taste_group: npt.NDArray[np.int8]
    latent: npt.NDArray[np.float32]
    profile: npt.NDArray[np.int16]
    considered: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return len(self.age)

    @classmethod
    def concatenate(cls, parts: list[Population]) -> Population:
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


def sample_rows(
    rng: np.random.Generator, weights: npt.NDArray[np.floating[Any]], k: int
) -> npt.NDArray[np.intp]:
    """``k`` column indices per row, drawn with replacement in proportion to ``weights``.

    Inverse-CDF sampling with a binary search run for all rows at once: each step halves the
    remaining range of every draw, reading only that draw's own row.
    """
    n, width = weights.shape
    cum = np.cumsum(weights, axis=1, dtype=np.float64)
    target = rng.random((n, k)) * cum[:, -1:]
    rows = np.arange(n)[:, None] * width
    flat = cum.ravel()
    # below = how many cumulative weights are <= target, i.e. the index of the chosen column.
    below = np.zeros((n, k), np.intp)
    step = 1 << (width.bit_length() - 1)
    while step:
        candidate = below + step
        inside = candidate <= width
        probe = flat[rows + np.minimum(candidate, width) - 1]
        below = np.where(inside & (probe <= target), candidate, below)
        step >>= 1
    chosen: npt.NDArray[np.intp] = np.minimum(below, width - 1)
    return chosen


def _draw_chunk(
    rng: np.random.Generator,
    n: int,
    catalogue: Catalogue,
    content: npt.NDArray[np.float32],
    config: SynthConfig,
) -> Population:
    start, end = config.start_s, config.end_s
    sme = rng.random(n) < 0.06
    age = np.where(sme, 25 + rng.beta(2.5, 2.5, n) * 45, 18 + rng.beta(2.0, 3.2, n) * 72)
    age = age.astype(np.int16)
    log_income = (
        np.log(35.0)
        + 0.5 * np.exp(-(((age - 52) / 18.0) ** 2))
        - 0.4 * (age < 25)
        + 0.5 * sme
        + rng.normal(0.0, 0.6, n)
    )
    income_k = np.exp(log_income)
    income_band = np.searchsorted(INCOME_BAND_EDGES_K, income_k, side="right").astype(np.int8)
    segment = np.select(
        [sme, income_k >= 180, income_k >= 100, age < 30, age >= 65],
        [SEGMENTS.index(s) for s in ("sme", "private", "affluent", "young", "senior")],
        SEGMENTS.index("mass"),
    ).astype(np.int8)

    appetite = (
        0.55 * np.log(income_k / 50.0)
        - 0.035 * (age - 45)
        + 0.3 * (segment == SEGMENTS.index("private"))
        + rng.normal(0.0, 0.7, n)
    )
    risk_tolerance = (1 + np.searchsorted(_RISK_CUTS, appetite)).astype(np.int8)

    new = rng.random(n) < 0.06
    tenure = np.where(
        new, rng.uniform(0.0, 0.25, n), np.minimum(age - 18 + 0.3, 0.25 + rng.exponential(7.0, n))
    ).astype(np.float32)
    joined = end - (tenure * _YEAR).astype(np.int64)
    dormant = ~new & (rng.random(n) < 0.15)
    active_to = np.where(dormant, end - rng.integers(150, 451, n) * SECONDS_PER_DAY, end)
    active_from = np.maximum(joined, start)
    lifecycle = np.where(new, 0, np.where(dormant, 2, 1)).astype(np.int8)

    # The recorded risk class: usually the true appetite, sometimes one class off (assessments
    # are noisy); a few customers were never assessed (class 0) and some profiles are stale.
    assessed = rng.random(n) < 0.95
    drift = np.where(rng.random(n) < 0.1, rng.choice(np.array([-1, 1]), n), 0)
    risk_class = np.where(assessed, np.clip(risk_tolerance + drift, 1, 5), 0).astype(np.int8)
    age_of_assessment = np.where(
        rng.random(n) < 0.85, rng.uniform(0, 730, n), rng.uniform(731, 1_800, n)
    )
    assessed_at = end - (age_of_assessment * SECONDS_PER_DAY).astype(np.int64)
    onboarding = np.minimum(joined + rng.integers(0, 14 * SECONDS_PER_DAY, n), end - 1)
    assessed_at = np.maximum(assessed_at, onboarding)

    digital = rng.random(n) < 1 / (1 + np.exp(0.07 * (age - 55)))
    channel = draw_channels(rng, digital)
    has_children = rng.random(n) < np.where((age >= 27) & (age <= 55), 0.55, 0.12)
    dependants = np.where(has_children, rng.integers(1, 4, n), 0).astype(np.int8)

    activity = rng.lognormal(-0.32, 0.8, n) * np.where(digital, 1.3, 0.75) * np.where(new, 1.5, 1)
    taste_group = rng.integers(0, N_TASTE_GROUPS, n).astype(np.int8)
    latent = (catalogue.taste_centroids[taste_group] + rng.normal(0, 0.4, (n, LATENT_DIM))).astype(
        np.float32
    )
    age_band = np.searchsorted(AGE_BAND_EDGES, age, side="right").astype(np.int8)
    profile = profile_code(segment, age_band, income_band, dependants > 0, digital, risk_tolerance)

    # Each customer's attention: a dozen draws from their own preference over products, so
    # favourites recur; a session later picks one of these slots at random.
    logits = CF_WEIGHT * (latent @ catalogue.latent.T) + content[profile] + catalogue.popularity
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights[:, catalogue.available_from == np.iinfo(np.int64).max] = 0.0
    considered = sample_rows(rng, weights, CONSIDERED)

    return Population(
        age=age,
        income_band=income_band,
        segment=segment,
        risk_tolerance=risk_tolerance,
        risk_class=risk_class,
        assessed_at=assessed_at.astype(np.int64),
        channel=channel,
        consent=rng.random(n) >= 0.03,
        tenure_years=tenure,
        digital=digital,
        dependants=dependants,
        lifecycle=lifecycle,
        active_from=active_from.astype(np.int64),
        active_to=active_to.astype(np.int64),
        activity=activity.astype(np.float32),
        wealth=(income_k / 50.0).astype(np.float32),
        taste_group=taste_group,
        latent=latent,
        profile=profile,
        considered=considered.astype(np.int16),
    )


def draw_population(
    config: SynthConfig, catalogue: Catalogue, content: npt.NDArray[np.float32]
) -> Population:
    """Draw all customers, chunk by chunk; each chunk has its own random stream."""
    parts = []
    for index, lo in enumerate(range(0, config.n_customers, CHUNK)):
        rng = np.random.default_rng([config.seed, _CUSTOMER_STREAM, index])
        size = min(CHUNK, config.n_customers - lo)
        parts.append(_draw_chunk(rng, size, catalogue, content, config))
    return parts[0] if len(parts) == 1 else Population.concatenate(parts)


def customer_id_array(n_customers: int) -> pa.Array:
    """External IDs of all customers, ``C`` followed by at least seven digits."""
    width = id_width(n_customers, 7)
    return prefixed_ids("C", np.arange(1, n_customers + 1, dtype=np.int64), width)


def _labels(names: tuple[str, ...], codes: npt.NDArray[np.int8]) -> pa.Array:
    return pa.array(list(names), pa.string()).take(pa.array(codes))


def customer_table(population: Population, ids: pa.Array, lo: int, hi: int) -> pa.Table:
    """Customers ``lo`` to ``hi`` in file form (import contract columns, then features)."""
    p = {f.name: getattr(population, f.name)[lo:hi] for f in fields(Population)}
    assessed = p["risk_class"] > 0
    risk_names = pa.array([None, "C1", "C2", "C3", "C4", "C5"], pa.string())
    return pa.table(
        {
            "customer_id": ids.slice(lo, hi - lo),
            "risk_class": risk_names.take(pa.array(p["risk_class"])),
            "risk_assessed_at": pa.array(p["assessed_at"], TIMESTAMP, mask=~assessed),
            "segment": _labels(SEGMENTS, p["segment"]),
            "age": pa.array(p["age"].astype(np.int32)),
            "income_band": _labels(INCOME_BANDS, p["income_band"]),
            "channel": _labels(CHANNELS, p["channel"]),
            "consent_personalization": pa.array(p["consent"]),
            "tenure_years": pa.array(np.round(p["tenure_years"].astype(np.float64), 2)),
            "digital_active": pa.array(p["digital"]),
            "dependants": pa.array(p["dependants"].astype(np.int32)),
        }
    )
