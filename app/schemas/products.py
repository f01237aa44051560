"""Product catalogue schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RiskLevel = Literal["R1", "R2", "R3", "R4", "R5"]
ProductStatus = Literal["draft", "active", "suspended", "retired"]


class ProductUpdate(BaseModel):
    """Body of ``PUT /v1/products/{product_id}``: the product's full description.

    ``status`` left out keeps the stored status (``active`` for a new product); a status given for
    an existing product must be an allowed transition.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=64)
    risk_level: RiskLevel
    status: ProductStatus | None = None
    launch_date: date | None = None
    tags: list[str] = Field(default_factory=list, max_length=64)
    features: dict[str, Any] = Field(default_factory=dict)


class ProductStatusUpdate(BaseModel):
    """Body of ``PATCH /v1/products/{product_id}/status``."""

    model_config = ConfigDict(extra="forbid")

    status: ProductStatus


class ProductPublic(BaseModel):
    """A product as finrec holds it; only ``active`` products are ever recommended."""

    model_config = ConfigDict(from_attributes=True)

    product_id: str
    name: str
    category: str
    risk_level: RiskLevel
    status: ProductStatus
    launch_date: date | None
    tags: list[str]
    features: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ProductsPublic(BaseModel):
    """A page of products and the total matching the filters."""

    data: list[ProductPublic]
    count: int
