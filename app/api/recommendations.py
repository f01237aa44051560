"""``GET /v1/customers/{customer_id}/recommendations``: the mobile-banking hot path."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Query, Request, Response

from app.api.admin import ADMIN_HEADER
from app.api.errors import ProblemError
from app.schemas.problems import problem_responses
from app.schemas.recommendations import RecommendationsPublic
from app.services.recommend.flow import recommend_for_customer
from app.services.recommend.service import Item, Recommendation, RecommendRequest

router = APIRouter(tags=["recommendations"])

RECOMMENDATION_HEADER = "X-Recommendation-Id"


def render_items(items: list[Item]) -> list[dict[str, Any]]:
    return [
        {
            "product_id": i.product_id,
            "name": i.name,
            "category": i.category,
            "rank": i.rank,
            "score": i.score,
            "reasons": i.reasons,
        }
        for i in items
    ]


def render(result: Recommendation) -> Response:
    """Serialise straight to JSON bytes (orjson); the schema documents the same shape."""
    body = {
        "recommendation_id": result.recommendation_id,
        "customer_id": result.customer_id,
        "strategy": result.strategy,
        "model_version": result.model_version,
        "served_from": result.served_from,
        "degraded": result.degraded,
        "experiment": result.experiment,
        "variant": result.variant,
        "items": render_items(result.items),
    }
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={RECOMMENDATION_HEADER: result.recommendation_id},
    )


@router.get(
    "/v1/customers/{customer_id}/recommendations",
    operation_id="recommendations-get",
    response_model=RecommendationsPublic,
    responses={
        200: {"headers": {RECOMMENDATION_HEADER: {"schema": {"type": "string"}}}},
        **problem_responses(403, 404, 503),
    },
)
async def get_recommendations(
    request: Request,
    customer_id: Annotated[str, Path(min_length=1, max_length=64)],
    k: Annotated[int | None, Query(ge=1, le=50, description="List length (default 10).")] = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    placement: Annotated[str | None, Query(max_length=64)] = None,
    explain: Annotated[bool, Query(description="Attach reasons to each item.")] = True,
    strategy: Annotated[
        str | None,
        Query(max_length=32, description=f"Admin only ({ADMIN_HEADER}: 1): serve this strategy."),
    ] = None,
    x_finrec_admin: Annotated[str | None, Header(alias=ADMIN_HEADER)] = None,
) -> Response:
    """Recommend suitable products for one customer, with reasons."""
    state = request.app.state
    if strategy is not None and not (state.settings.admin_header_allowed and x_finrec_admin == "1"):
        raise ProblemError(
            403, "admin-required", f"the strategy override is for administrators ({ADMIN_HEADER})"
        )
    params = RecommendRequest(
        k=k if k is not None else state.settings.default_k,
        channel=channel,
        placement=placement,
        explain=explain,
        strategy=strategy,
    )
    result = await recommend_for_customer(state.serving, customer_id, params)
    return render(result)
