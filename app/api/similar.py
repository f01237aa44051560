"""``GET /v1/products/{product_id}/similar``: products like one product, policy-gated."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request, Response

from app.api.auth import AUTH_RESPONSES, require_scope
from app.api.recommendations import render_items
from app.schemas.problems import problem_responses
from app.schemas.recommendations import SimilarProductsPublic
from app.services.recommend.flow import profile_for
from app.services.recommend.similar import similar_products

router = APIRouter(
    tags=["recommendations"],
    dependencies=[require_scope("recommendations:read")],
    responses=AUTH_RESPONSES,
)


@router.get(
    "/v1/products/{product_id}/similar",
    operation_id="products-similar",
    response_model=SimilarProductsPublic,
    responses=problem_responses(404, 503),
)
async def get_similar_products(
    request: Request,
    product_id: Annotated[str, Path(min_length=1, max_length=64)],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    customer_id: Annotated[
        str | None,
        Query(max_length=64, description="Filter for this customer's suitability and holdings."),
    ] = None,
) -> Response:
    """List products similar to one product, filtered by the policy gate."""
    state = request.app.state
    profile, degraded = None, False
    if customer_id is not None:
        serving = state.serving
        profile, degraded = await profile_for(
            state.profiles, customer_id, serving.profile_reads, serving.profile_wait
        )
    result = similar_products(
        state.recommendations,
        product_id,
        k,
        customer_id=customer_id,
        profile=profile,
        degraded=degraded,
    )
    body = {
        "product_id": result.product_id,
        "customer_id": result.customer_id,
        "strategy": result.strategy,
        "model_version": result.model_version,
        "served_from": result.served_from,
        "degraded": result.degraded,
        "items": render_items(result.items),
    }
    return Response(orjson.dumps(body), media_type="application/json")
