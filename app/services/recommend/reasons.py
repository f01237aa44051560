"""Reason codes and their disclosure texts, one template each.

Codes are the stable interface (clients localise on them); texts are the default English wording.
``promotion`` and ``non_personalised`` are disclosures: they are always attached, even when the
caller asked for no explanations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

COLLABORATIVE: Final = "collaborative"
CONTENT: Final = "content"
POPULAR_IN_SEGMENT: Final = "popular_in_segment"
POPULAR: Final = "popular"
PROMOTION: Final = "promotion"
NON_PERSONALISED: Final = "non_personalised"
SIMILAR: Final = "similar"

Reason = dict[str, str]

DISCLOSURES: Final = frozenset({PROMOTION, NON_PERSONALISED})

TEMPLATES: Final[dict[str, str]] = {
    COLLABORATIVE: "Customers with a profile like yours hold this product.",
    CONTENT: "Matches your profile and your risk level.",
    POPULAR_IN_SEGMENT: "Popular with customers in your segment.",
    POPULAR: "Popular with our customers.",
    PROMOTION: "Promotion: featured by the bank.",
    NON_PERSONALISED: "Not based on your personal data; suitable for your risk level.",
    SIMILAR: "Similar to a product you are viewing.",
}

_PLAIN: Final[dict[str, Reason]] = {
    code: {"code": code, "text": text} for code, text in TEMPLATES.items()
}

# Which reason a model family gives. Anything unlisted is collaborative (learned from holdings).
ALGORITHM_REASON: Final[dict[str, str]] = {
    "content": CONTENT,
    "popularity": POPULAR_IN_SEGMENT,
}


def reason_for_algorithm(algorithm: str) -> str:
    return ALGORITHM_REASON.get(algorithm, COLLABORATIVE)


def reason(code: str, members: Iterable[str] = ()) -> Reason:
    """One ``{code, text}`` entry; ``members`` (fusion) are named in the text."""
    names = sorted(set(members))
    if not names:
        return _PLAIN[code]  # shared and never mutated: serialised as is
    return {"code": code, "text": f"{TEMPLATES[code][:-1]} (models: {', '.join(names)})."}


def fusion_reasons(contributions: Iterable[str]) -> list[Reason]:
    """Group contributing member algorithms by the reason they give, one entry per reason."""
    groups: dict[str, list[str]] = {}
    for member in contributions:
        groups.setdefault(reason_for_algorithm(member), []).append(member)
    return [reason(code, members) for code, members in sorted(groups.items())]
