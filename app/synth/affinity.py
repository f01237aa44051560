"""How much a customer wants a product: a content part and a collaborative part.

The content part links customer attributes (segment, age, income, dependants, digital habit, risk
tolerance) to product tags and categories, so a content-based model can learn it. The
collaborative part is a dot product of hidden taste vectors that no attribute explains: customers
of the same taste group take up the same products, which only collaborative filtering can find.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.synth.catalogue import Catalogue

SEGMENTS = ("mass", "young", "senior", "affluent", "private", "sme")
AGE_BAND_EDGES = (30, 45, 65)
INCOME_BANDS = ("<25k", "25-50k", "50-100k", "100-250k", "250k+")
INCOME_BAND_EDGES_K = (25.0, 50.0, 100.0, 250.0)
CF_WEIGHT = 1.1

_Weights = dict[str, float]

_SEGMENT: dict[str, _Weights] = {
    "mass": {"category:deposit": 0.3, "category:card": 0.3, "category:loan": 0.2,
             "everyday": 0.3, "savings": 0.2, "premium": -0.6, "private": -1.5},
    "young": {"category:card": 0.5, "digital": 0.6, "youth": 1.3, "cashback": 0.5,
              "travel": 0.3, "education": 0.4, "senior": -1.5, "retirement": -0.6,
              "private": -1.5, "mortgage": -0.3},
    "senior": {"senior": 1.3, "income": 0.5, "category:deposit": 0.4, "category:insurance": 0.3,
               "health": 0.6, "retirement": 0.3, "youth": -1.5, "education": -0.8,
               "digital": -0.4, "mortgage": -0.8, "leveraged": -0.5},
    "affluent": {"category:wealth": 0.6, "category:fund": 0.5, "premium": 0.4, "travel": 0.3,
                 "category:pension": 0.3, "youth": -0.8, "private": -0.3},
    "private": {"category:wealth": 0.9, "private": 1.6, "premium": 0.9, "gold": 0.4,
                "global": 0.3, "alternatives": 0.5, "everyday": -0.3, "youth": -1.5,
                "cashback": -0.6},
    "sme": {"business": 2.6, "category:loan": 0.3, "everyday": -0.2, "youth": -1.0,
            "senior": -0.8},
}  # fmt: skip
_AGE: tuple[_Weights, ...] = (
    {"youth": 0.4, "education": 0.3, "retirement": -0.4},
    {"mortgage": 0.7, "home": 0.4, "family": 0.3, "car": 0.2, "youth": -0.8},
    {
        "youth": -1.2,
        "retirement": 0.6,
        "category:pension": 0.4,
        "health": 0.3,
        "tax-advantaged": 0.3,
    },
    {"health": 0.5, "income": 0.4, "youth": -1.0, "mortgage": -0.6},
)
_INCOME: tuple[_Weights, ...] = (
    {"credit": 0.2, "cashback": 0.3, "premium": -0.9, "category:wealth": -0.6, "private": -1.0},
    {"cashback": 0.1, "premium": -0.3},
    {"category:fund": 0.2, "category:wealth": 0.2},
    {"premium": 0.5, "category:wealth": 0.3, "travel": 0.2},
    {"premium": 0.9, "private": 0.7, "alternatives": 0.3},
)
_DEPENDANTS: tuple[_Weights, ...] = (
    {"family": -0.3},
    {"family": 0.9, "education": 0.6, "home": 0.4, "life": 0.5},
)
_DIGITAL: tuple[_Weights, ...] = ({"digital": -0.7}, {"digital": 0.6, "index": 0.3})
_RISK: tuple[_Weights, ...] = (
    {"savings": 0.4, "income": 0.2, "bond": 0.2, "leveraged": -1.0, "equity": -0.4},
    {"savings": 0.2, "bond": 0.3, "income": 0.2, "leveraged": -0.6},
    {"balanced": 0.3},
    {"equity": 0.3, "growth": 0.3, "index": 0.2},
    {"equity": 0.4, "growth": 0.4, "leveraged": 0.5, "alternatives": 0.3, "sector": 0.3},
)

_LEVELS = (len(SEGMENTS), len(AGE_BAND_EDGES) + 1, len(INCOME_BANDS), 2, 2, 5)
N_PROFILES = int(np.prod(_LEVELS))


def profile_code(
    segment: npt.NDArray[np.int8],
    age_band: npt.NDArray[np.int8],
    income_band: npt.NDArray[np.int8],
    has_dependants: npt.NDArray[np.bool_],
    digital: npt.NDArray[np.bool_],
    risk_tolerance: npt.NDArray[np.int8],
) -> npt.NDArray[np.int16]:
    """One integer per customer naming the combination of attributes the content part reads."""
    parts = (segment, age_band, income_band, has_dependants, digital, risk_tolerance - 1)
    code = np.zeros(len(segment), np.int32)
    for part, levels in zip(parts, _LEVELS, strict=True):
        code = code * levels + part.astype(np.int32)
    return code.astype(np.int16)


def _scores(weights: _Weights, catalogue: Catalogue) -> npt.NDArray[np.float32]:
    vector = np.zeros(len(catalogue.vocabulary), np.float32)
    for name, weight in weights.items():
        if name in catalogue.vocabulary:
            vector[catalogue.vocabulary.index(name)] = weight
    return catalogue.features @ vector


def content_table(catalogue: Catalogue) -> npt.NDArray[np.float32]:
    """Content affinity of every attribute profile for every product (profiles x products)."""
    tables = [
        np.stack([_scores(_SEGMENT[s], catalogue) for s in SEGMENTS]),
        np.stack([_scores(w, catalogue) for w in _AGE]),
        np.stack([_scores(w, catalogue) for w in _INCOME]),
        np.stack([_scores(w, catalogue) for w in _DEPENDANTS]),
        np.stack([_scores(w, catalogue) for w in _DIGITAL]),
        np.stack([_scores(w, catalogue) for w in _RISK]),
    ]
    # Investors look for products close to their own risk appetite; everyone looks less at
    # products above it.
    tolerance = np.arange(1, 6, dtype=np.float32)[:, None]
    gap = catalogue.risk[None, :].astype(np.float32) - tolerance
    tables[-1] = (
        tables[-1]
        - 0.35 * np.abs(gap) * catalogue.investment[None, :]
        - 0.4 * np.clip(gap, 0, None)
    ).astype(np.float32)
    grid = np.zeros((*_LEVELS, len(catalogue)), np.float32)
    for axis, table in enumerate(tables):
        shape = [1] * len(_LEVELS) + [len(catalogue)]
        shape[axis] = _LEVELS[axis]
        grid += table.reshape(shape)
    return grid.reshape(N_PROFILES, len(catalogue))


def affinity(
    customer_latent: npt.NDArray[np.float32],
    profile: npt.NDArray[np.int16],
    products: npt.NDArray[np.intp],
    catalogue: Catalogue,
    content: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """Affinity of each (customer, product) pair; arguments are aligned per pair."""
    collaborative: npt.NDArray[np.float32] = np.einsum(
        "ij,ij->i", customer_latent, catalogue.latent[products]
    )
    total = CF_WEIGHT * collaborative + content[profile, products] + catalogue.popularity[products]
    return total.astype(np.float32)
