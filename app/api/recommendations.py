"""``GET /v1/customers/{customer_id}/recommendations``: the mobile-banking hot path.

Query parameters are validated by one pydantic model (:class:`RecommendationQuery`) instead of
one FastAPI parameter each: the result and the 422 problem are the same, at a fraction of the
per-request cost. The OpenAPI description lists them from the same model.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.types import Message

from app.api.auth import AUTH_RESPONSES, insufficient_scope, require_scope
from app.observability import Metrics, note_recommendation, note_served
from app.schemas.problems import problem_responses
from app.schemas.recommendations import RecommendationQuery, RecommendationsPublic
from app.services.keys import SCOPE_ADMIN, Principal
from app.services.recommend.flow import ServingState, recommend_for_customer
from app.services.recommend.service import Item, Recommendation, RecommendRequest

router = APIRouter(
    tags=["recommendations"],
    dependencies=[require_scope("recommendations:read")],
    responses=AUTH_RESPONSES,
)

RECOMMENDATION_HEADER = "X-Recommendation-Id"


def query_parameters(model: type[RecommendationQuery]) -> list[dict[str, Any]]:
    """OpenAPI ``parameters`` entries for a query model."""
    schema = model.model_json_schema()
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": prop.pop("description", ""),
            "schema": {k: v for k, v in prop.items() if k != "title"},
        }
        for name, prop in schema["properties"].items()
    ]
    return params


_PLAIN_LIMITS = {"channel": 32, "placement": 64}


def _plain_query(raw: bytes) -> RecommendationQuery | None:
    """The common query (``k``, ``channel``, ``placement`` in plain ASCII) without validation
    machinery; ``None`` for anything else, which :func:`parse_query` validates in full.

    Every value accepted here is one the model accepts with the same result, so the two paths
    never disagree.
    """
    if not raw:
        return _EMPTY_QUERY
    if b"%" in raw or b"+" in raw or not raw.isascii():
        return None
    values: dict[str, str] = {}
    for part in raw.decode("ascii").split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            return None
        values[name] = value  # the last value wins, as in the full path
    k: int | None = None
    for name, value in values.items():
        if name == "k":
            if not value.isdigit() or not 1 <= int(value) <= 50:
                return None
            k = int(value)
        elif name in _PLAIN_LIMITS:
            if len(value) > _PLAIN_LIMITS[name]:
                return None
        elif name in ("explain", "strategy"):
            return None
    return RecommendationQuery.model_construct(
        k=k, channel=values.get("channel"), placement=values.get("placement")
    )


_EMPTY_QUERY = RecommendationQuery()


def parse_query(request: Request) -> RecommendationQuery:
    """Validate the query string; errors become the usual 422 problem naming the field."""
    plain = _plain_query(request.scope["query_string"])
    if plain is not None:
        return plain
    try:
        return RecommendationQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("query", *err["loc"])} for err in exc.errors()]
        ) from None


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


def render_body(result: Recommendation) -> bytes:
    """The JSON body of one served list (orjson); the schema documents the same shape."""
    return orjson.dumps(
        {
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
    )


def render(result: Recommendation) -> Response:
    """Serialise straight to JSON bytes (orjson); the schema documents the same shape."""
    return Response(
        render_body(result),
        media_type="application/json",
        headers={RECOMMENDATION_HEADER: result.recommendation_id},
    )


_CONTENT_TYPE = (b"content-type", b"application/json")


def response_start(result: Recommendation, body: bytes) -> Message:
    """The ``http.response.start`` message :func:`render`'s response sends, header for header
    and in the same order, built without a response object (the fast lane sends it)."""
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"x-recommendation-id", result.recommendation_id.encode("latin-1")),
            (b"content-length", b"%d" % len(body)),
            _CONTENT_TYPE,
        ],
    }


def plain_request(raw_query: bytes, default_k: int) -> RecommendRequest | None:
    """The service request of a plain query (see :func:`_plain_query`), else ``None``; what
    :func:`get_recommendations` builds from the same query, so the fast lane can keep it."""
    query = _plain_query(raw_query)
    if query is None:
        return None
    return RecommendRequest(
        k=query.k if query.k is not None else default_k,
        channel=query.channel,
        placement=query.placement,
        explain=query.explain,
        strategy=query.strategy,
    )


async def answer_plain(
    state: ServingState, metrics: Metrics | None, customer_id: str, params: RecommendRequest
) -> tuple[Message, Message]:
    """The fast lane's answer to a plain query: the same service flow, notes and bytes as
    :func:`get_recommendations`, as the two ASGI messages to send (no response object)."""
    result = await recommend_for_customer(state, customer_id, params)
    note_served(metrics, result)
    body = render_body(result)
    return response_start(result, body), {"type": "http.response.body", "body": body}


@router.get(
    "/v1/customers/{customer_id}/recommendations",
    operation_id="recommendations-get",
    response_model=RecommendationsPublic,
    responses={
        200: {"headers": {RECOMMENDATION_HEADER: {"schema": {"type": "string"}}}},
        **problem_responses(403, 404, 503),
    },
    openapi_extra={"parameters": query_parameters(RecommendationQuery)},
)
async def get_recommendations(
    request: Request,
    customer_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> Response:
    """Recommend suitable products for one customer, with reasons."""
    state = request.app.state
    query = parse_query(request)
    if query.strategy is not None:
        # The override is an admin option on a read route: the guard has admitted the key
        # already, so only the extra scope is checked here (same 403 as the guard's).
        principal: Principal | None = request.scope.get("state", {}).get("principal")
        if principal is None or not principal.allows(SCOPE_ADMIN):
            raise insufficient_scope(SCOPE_ADMIN)
    params = RecommendRequest(
        k=query.k if query.k is not None else state.settings.default_k,
        channel=query.channel,
        placement=query.placement,
        explain=query.explain,
        strategy=query.strategy,
    )
    result = await recommend_for_customer(state.serving, customer_id, params)
    note_recommendation(request, result)  # recommendation id on the log lines; served-list metrics
    return render(result)
