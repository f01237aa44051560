"""Recommendation and similar-product responses (documented here; built directly for speed)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ServedFrom = Literal["precomputed", "live", "fallback"]
ReasonCode = Literal[
    "collaborative",
    "content",
    "popular_in_segment",
    "popular",
    "promotion",
    "non_personalised",
    "similar",
]


class ReasonPublic(BaseModel):
    """Why an item is shown: a stable code and the default disclosure text."""

    code: ReasonCode
    text: str


class RecommendedItemPublic(BaseModel):
    product_id: str
    name: str
    category: str
    rank: int = Field(ge=1)
    score: float
    reasons: list[ReasonPublic] = Field(
        description="Always includes `promotion` and `non_personalised` where they apply, "
        "even with `explain=false`."
    )


class RecommendationsPublic(BaseModel):
    """A recommendation list; ``recommendation_id`` is also in the ``X-Recommendation-Id`` header.

    Send it back with the events the list leads to (``POST /v1/events``) to attribute outcomes.
    """

    recommendation_id: str
    customer_id: str
    strategy: str = Field(description="What served the list: a model strategy or `popularity`.")
    model_version: str | None = Field(description="The model version that served, if any.")
    served_from: ServedFrom
    degraded: bool = Field(
        description="True when a dependency was unavailable and a safer path answered."
    )
    experiment: str | None = None
    variant: str | None = None
    items: list[RecommendedItemPublic]


class SimilarProductsPublic(BaseModel):
    """Products similar to ``product_id``, filtered by the same policy gate."""

    product_id: str
    customer_id: str | None
    strategy: str
    model_version: str | None
    served_from: ServedFrom
    degraded: bool
    items: list[RecommendedItemPublic]


class RecommendationQuery(BaseModel):
    """Query parameters of ``GET /v1/customers/{customer_id}/recommendations``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    k: int | None = Field(default=None, ge=1, le=50, description="List length (default 10).")
    channel: str | None = Field(default=None, max_length=32, description="Calling channel.")
    placement: str | None = Field(
        default=None, max_length=64, description="Where the list is shown (e.g. `home`)."
    )
    explain: bool = Field(default=True, description="Attach reasons to each item.")
    strategy: str | None = Field(
        default=None,
        max_length=32,
        description="Needs the `admin` scope: serve this strategy instead of the default.",
    )
