"""Decision records: what one served list showed, why, and what the rules kept off it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

RULES_DOC = (
    "The first rule that kept the product off the list: inactive, held, unassessed_risk, "
    "suitability or category_cap (docs/decisions.md)."
)


class DecisionItem(BaseModel):
    """One served item, as the response showed it."""

    product_id: str
    rank: int = Field(description="1 = first.")
    score: float
    reasons: list[str] = Field(description="Reason codes, in the order the response gave them.")


class DecisionRemoval(BaseModel):
    """One product the policy rules kept off the list."""

    product_id: str
    rule: str = Field(description=RULES_DOC)


class DecisionPublic(BaseModel):
    """The decision record of one served list (append-only)."""

    recommendation_id: str
    customer_id: str
    served_at: datetime
    strategy: str
    model_version: str | None
    policy_version: str | None = Field(
        description="The rules in force and their settings; null on records older than it."
    )
    served_from: str = Field(description="precomputed, live or fallback.")
    degraded: bool
    basis: str | None = Field(
        description="personalised, non_personalised (no consent) or fail_closed (profile "
        "unreadable); null on records older than it."
    )
    risk_class: int | None = Field(
        description="The risk class the rules used (0: no valid assessment, R1 only)."
    )
    channel: str | None
    placement: str | None
    experiment: str | None
    variant: str | None
    items: list[DecisionItem]
    removed: list[DecisionRemoval]


class DecisionsPublic(BaseModel):
    """One page of a customer's decision records, newest first."""

    data: list[DecisionPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class PruneResult(BaseModel):
    """What the retention prune deleted (or would delete, on a dry run)."""

    cutoff: datetime
    records: int
    dry_run: bool
