"""The product catalogue: listing, upsert and the product lifecycle (status transitions)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Product
from app.schemas.products import ProductPublic, ProductsPublic, ProductUpdate
from app.services.errors import ConflictError, ProductNotFound

Invalidate = Callable[[str], None]

# The product lifecycle: launch, adjust (suspend and resume), retire. Retirement is final so that
# a retired product can never come back into recommendations by accident.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"active", "retired"}),
    "active": frozenset({"suspended", "retired"}),
    "suspended": frozenset({"active", "retired"}),
    "retired": frozenset(),
}
INITIAL_STATUSES = frozenset({"draft", "active"})


class InvalidStatusTransition(ConflictError):
    """The product cannot move from its current status to the requested one."""

    slug = "invalid-status-transition"


def check_transition(current: str | None, target: str) -> None:
    """Raise ``InvalidStatusTransition`` unless ``current`` → ``target`` is allowed.

    ``current`` is None for a product that does not exist yet. Staying put is always allowed.
    """
    if current is None:
        if target not in INITIAL_STATUSES:
            raise InvalidStatusTransition(
                f"a new product starts as draft or active, not {target!r}"
            )
        return
    if target == current or target in TRANSITIONS[current]:
        return
    allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (retirement is final)"
    raise InvalidStatusTransition(
        f"cannot move a {current} product to {target}; allowed from {current}: {allowed}"
    )


def _find(session: Session, product_id: str) -> Product | None:
    return session.scalar(select(Product).where(Product.product_id == product_id))


def list_products(
    session: Session,
    *,
    status: str | None = None,
    category: str | None = None,
    risk_level: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> ProductsPublic:
    """A page of products ordered by id, with the total count matching the filters."""
    query = select(Product)
    if status is not None:
        query = query.where(Product.status == status)
    if category is not None:
        query = query.where(Product.category == category)
    if risk_level is not None:
        query = query.where(Product.risk_level == risk_level)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Product.product_id).limit(limit).offset(offset)).all()
    return ProductsPublic(data=[ProductPublic.model_validate(p) for p in rows], count=count)


def get_product(session: Session, product_id: str) -> ProductPublic:
    """One product by its external id."""
    product = _find(session, product_id)
    if product is None:
        raise ProductNotFound(f"no product with id {product_id!r}")
    return ProductPublic.model_validate(product)


def _apply(session: Session, product_id: str, update: ProductUpdate) -> tuple[Product, bool]:
    product = _find(session, product_id)
    created = product is None
    target = update.status or (product.status if product is not None else "active")
    check_transition(product.status if product is not None else None, target)
    if product is None:
        product = Product(product_id=product_id)
        session.add(product)
    for name, value in update.model_dump(exclude={"status"}).items():
        setattr(product, name, value)
    product.status = target
    return product, created


def upsert_product(
    session: Session,
    product_id: str,
    update: ProductUpdate,
    *,
    invalidate: Invalidate | None = None,
) -> tuple[ProductPublic, bool]:
    """Create or replace a product's description; returns it and whether it was created."""
    # Two writers creating the same product at once: the loser retries as an update.
    for attempt in range(2):
        product, created = _apply(session, product_id, update)
        try:
            session.commit()
            break
        except IntegrityError:
            session.rollback()
            if attempt:
                raise
    if invalidate is not None:
        invalidate(product_id)
    return ProductPublic.model_validate(product), created


def set_product_status(
    session: Session, product_id: str, status: str, *, invalidate: Invalidate | None = None
) -> ProductPublic:
    """Move a product along its lifecycle; takes effect on the next recommendation."""
    product = _find(session, product_id)
    if product is None:
        raise ProductNotFound(f"no product with id {product_id!r}")
    check_transition(product.status, status)
    product.status = status
    session.commit()
    if invalidate is not None:
        invalidate(product_id)
    return ProductPublic.model_validate(product)
