"""The product catalogue: browse with the read scope; upsert and lifecycle changes for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.api.auth import AUTH_RESPONSES, require_scope
from app.api.deps import CatalogDep, SessionDep
from app.schemas.problems import problem_responses
from app.schemas.products import (
    ProductPublic,
    ProductsPublic,
    ProductStatus,
    ProductStatusUpdate,
    ProductUpdate,
    RiskLevel,
)
from app.services import products

router = APIRouter(prefix="/v1/products", tags=["products"], responses=AUTH_RESPONSES)

READ = [require_scope("recommendations:read")]
ADMIN = [require_scope("admin")]

ProductId = Annotated[str, Path(min_length=1, max_length=64, description="External product id.")]


@router.get(
    "",
    operation_id="products-list",
    response_model=ProductsPublic,
    dependencies=READ,
    responses=problem_responses(),
)
def list_products(
    session: SessionDep,
    status: Annotated[ProductStatus | None, Query(description="Only this status.")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    risk_level: Annotated[RiskLevel | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ProductsPublic:
    """List products ordered by id, optionally filtered by status, category or risk level."""
    return products.list_products(
        session, status=status, category=category, risk_level=risk_level, limit=limit, offset=offset
    )


@router.get(
    "/{product_id}",
    operation_id="products-get",
    response_model=ProductPublic,
    dependencies=READ,
    responses=problem_responses(404),
)
def read_product(product_id: ProductId, session: SessionDep) -> ProductPublic:
    """Read one product."""
    return products.get_product(session, product_id)


@router.put(
    "/{product_id}",
    operation_id="products-upsert",
    response_model=ProductPublic,
    dependencies=ADMIN,
    responses={
        201: {"model": ProductPublic, "description": "Created"},
        **problem_responses(403, 409),
    },
)
def upsert_product(
    product_id: ProductId,
    body: ProductUpdate,
    session: SessionDep,
    catalog: CatalogDep,
    response: Response,
) -> ProductPublic:
    """Create or replace a product (admin); a status change must be an allowed transition."""
    product, created = products.upsert_product(
        session, product_id, body, invalidate=catalog.invalidate
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return product


@router.patch(
    "/{product_id}/status",
    operation_id="products-set-status",
    response_model=ProductPublic,
    dependencies=ADMIN,
    responses=problem_responses(403, 404, 409),
)
def set_product_status(
    product_id: ProductId, body: ProductStatusUpdate, session: SessionDep, catalog: CatalogDep
) -> ProductPublic:
    """Move a product along its lifecycle (admin): draft → active ⇄ suspended → retired."""
    return products.set_product_status(
        session, product_id, body.status, invalidate=catalog.invalidate
    )
