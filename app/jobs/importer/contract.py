"""The column contract of the three import kinds: which columns exist, which are required."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ImportKind(StrEnum):
    """What a file holds; each kind has its own columns, rules and writer."""

    CUSTOMERS = "customers"
    PRODUCTS = "products"
    INTERACTIONS = "interactions"


@dataclass(frozen=True)
class Contract:
    """Columns of one kind. ``max_lengths`` mirror the database column sizes."""

    key: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    max_lengths: dict[str, int]
    extra_columns_are_features: bool

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + self.optional


CONTRACTS: dict[ImportKind, Contract] = {
    ImportKind.CUSTOMERS: Contract(
        key="customer_id",
        required=("customer_id",),
        optional=(
            "risk_class",
            "risk_assessed_at",
            "segment",
            "age",
            "income_band",
            "channel",
            "consent_personalization",
        ),
        max_lengths={"customer_id": 64, "segment": 64, "income_band": 32, "channel": 32},
        extra_columns_are_features=True,
    ),
    ImportKind.PRODUCTS: Contract(
        key="product_id",
        required=("product_id", "name", "category", "risk_level"),
        optional=("status", "launch_date", "tags"),
        max_lengths={"product_id": 64, "name": 200, "category": 64},
        extra_columns_are_features=True,
    ),
    ImportKind.INTERACTIONS: Contract(
        key="event_id",
        required=("customer_id", "product_id", "event_type", "occurred_at"),
        optional=("value", "event_id", "channel", "recommendation_id"),
        max_lengths={
            "customer_id": 64,
            "product_id": 64,
            "event_id": 128,
            "channel": 32,
            "recommendation_id": 64,
        },
        extra_columns_are_features=False,
    ),
}

# Ages outside this range are data-entry errors, not customers.
MIN_AGE = 0
MAX_AGE = 120
