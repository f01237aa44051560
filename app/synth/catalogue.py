"""The product catalogue: which products exist, their lifecycle, the hidden traits behind demand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from app.synth.config import SECONDS_PER_DAY, SynthConfig
from app.synth.products import CONCEPTS, INVESTMENT_CATEGORIES, Concept

LATENT_DIM = 8
N_TASTE_GROUPS = 8
STATUSES = ("active", "draft", "suspended", "retired")
_NEVER = np.iinfo(np.int64).max
_CATALOGUE_STREAM = 1


@dataclass(frozen=True)
class Catalogue:
    """Products in file form plus the per-product arrays the behaviour model reads.

    ``available_from``/``available_to`` bound when a product can appear in the log: a product
    is seen only after launch, a suspended or retired one only until it was withdrawn, and a
    draft never.
    """

    table: pa.Table
    product_ids: pa.Array
    categories: tuple[str, ...]
    category: npt.NDArray[np.int8]
    risk: npt.NDArray[np.int8]
    vocabulary: tuple[str, ...]
    features: npt.NDArray[np.float32]
    popularity: npt.NDArray[np.float32]
    latent: npt.NDArray[np.float32]
    taste_centroids: npt.NDArray[np.float32]
    available_from: npt.NDArray[np.int64]
    available_to: npt.NDArray[np.int64]
    amount: npt.NDArray[np.float32]
    investment: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.risk)


def _expand(rng: np.random.Generator) -> list[Concept]:
    """Pick this bank's products: core products always, most others, some in several series."""
    chosen: list[Concept] = []
    for concept in CONCEPTS:
        if not concept.core and rng.random() < 0.1:
            continue
        if "{series}" in concept.name:
            for letter in "ABC"[: int(rng.integers(1, 4))]:
                chosen.append(concept._replace(name=concept.name.format(series=f"Series {letter}")))
        else:
            chosen.append(concept)
    return chosen


def _lifecycle(
    rng: np.random.Generator, concepts: list[Concept], config: SynthConfig
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int64], npt.NDArray[np.int64], list[int]]:
    """Status, availability window and launch day (days since epoch) of every product."""
    n = len(concepts)
    start, end = config.start_s, config.end_s
    span = end - start
    day = SECONDS_PER_DAY
    launch = start - rng.integers(30, 8 * 365, n) * day
    available_to = np.full(n, _NEVER, np.int64)
    status = np.zeros(n, np.int8)

    optional = np.flatnonzero(~np.array([c.core for c in concepts]))
    order = rng.permutation(optional)
    sizes = [int(rng.integers(lo, hi + 1)) for lo, hi in ((3, 6), (2, 4), (2, 4), (3, 6))]
    cold, draft, suspended, retired, rest = np.split(order, np.cumsum(sizes))
    # Recent launches see few events: the cold products a recommender must still place.
    launch[cold] = end - rng.integers(7, 46, len(cold)) * day
    # Drafts are planned, not launched: a launch date after the log ends, and no events.
    status[draft] = STATUSES.index("draft")
    launch[draft] = end + rng.integers(14, 121, len(draft)) * day
    status[suspended] = STATUSES.index("suspended")
    available_to[suspended] = end - rng.integers(7, 61, len(suspended)) * day
    status[retired] = STATUSES.index("retired")
    available_to[retired] = start + (rng.uniform(0.2, 0.8, len(retired)) * span).astype(np.int64)
    # Some products launch during the log, so their history is shorter than the rest.
    mid = rest[: max(1, len(rest) // 8)]
    launch[mid] = start + (rng.uniform(0.1, 0.8, len(mid)) * span).astype(np.int64)

    launch -= launch % day
    available_from = launch.copy()
    available_from[draft] = _NEVER
    return status, available_from, available_to, (launch // day).tolist()


def _centroids(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Taste group centres at right angles to each other, so every group wants a different mix
    of products whatever the seed (random directions can land two groups close together)."""
    q, _ = np.linalg.qr(rng.normal(0.0, 1.0, (LATENT_DIM, LATENT_DIM)))
    centres: npt.NDArray[np.float32] = (q.T[:N_TASTE_GROUPS] * np.sqrt(LATENT_DIM)).astype(
        np.float32
    )
    return centres


def build_catalogue(config: SynthConfig) -> Catalogue:
    """Draw the catalogue of a bank for ``config.seed`` (60 to 150 products)."""
    rng = np.random.default_rng([config.seed, _CATALOGUE_STREAM])
    concepts = _expand(rng)
    n = len(concepts)
    status, available_from, available_to, launch_days = _lifecycle(rng, concepts, config)

    categories = tuple(sorted({c.category for c in concepts}))
    tags = [c.tags.split("|") for c in concepts]
    vocabulary = tuple(sorted({t for ts in tags for t in ts})) + tuple(
        f"category:{c}" for c in categories
    )
    position = {name: i for i, name in enumerate(vocabulary)}
    features = np.zeros((n, len(vocabulary)), np.float32)
    for row, (concept, product_tags) in enumerate(zip(concepts, tags, strict=True)):
        for tag in [*product_tags, f"category:{concept.category}"]:
            features[row, position[tag]] = 1.0

    product_ids = pa.array([f"P{i + 1:03d}" for i in range(n)], pa.string())
    table = pa.table(
        {
            "product_id": product_ids,
            "name": pa.array([c.name for c in concepts], pa.string()),
            "category": pa.array([c.category for c in concepts], pa.string()),
            "risk_level": pa.array([f"R{c.risk}" for c in concepts], pa.string()),
            "status": pa.array([STATUSES[s] for s in status], pa.string()),
            "launch_date": pa.array(launch_days, pa.int32()).cast(pa.date32()),
            "tags": pa.array([c.tags for c in concepts], pa.string()),
            "term_months": pa.array([c.term_months for c in concepts], pa.int32()),
            "min_amount": pa.array([float(c.min_amount) for c in concepts], pa.float64()),
            "fee_pct": pa.array([float(c.fee_pct) for c in concepts], pa.float64()),
        }
    )
    return Catalogue(
        table=table,
        product_ids=product_ids,
        categories=categories,
        category=np.array([categories.index(c.category) for c in concepts], np.int8),
        risk=np.array([c.risk for c in concepts], np.int8),
        vocabulary=vocabulary,
        features=features,
        popularity=(np.array([c.popularity for c in concepts]) + rng.normal(0, 0.3, n)).astype(
            np.float32
        ),
        latent=rng.normal(0.0, 1.0 / np.sqrt(LATENT_DIM), (n, LATENT_DIM)).astype(np.float32),
        taste_centroids=_centroids(rng),
        available_from=available_from,
        available_to=available_to,
        amount=np.array([max(c.amount, 50.0) for c in concepts], np.float32),
        investment=np.array([c.category in INVESTMENT_CATEGORIES for c in concepts]),
    )
