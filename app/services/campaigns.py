"""Campaign administration: create, list, change and end boosts and pins of one product.

The API routes and ``finrec campaigns`` both call these, so they behave the same. A campaign is
never deleted: ending it sets ``ends_at`` to the moment it was ended and keeps the row, so what
was promoted, where and when stays on record next to the exposures it produced. Serving reads
the rows through :class:`app.services.recommend.promotions.PromotionBook`; the policy gate runs
first there, so no campaign can put an unsuitable, held or inactive product in front of anyone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlalchemy.orm import Session

from app.db.models import Campaign, Product
from app.schemas.campaigns import (
    CampaignCreate,
    CampaignPublic,
    CampaignsPublic,
    CampaignStatus,
    CampaignUpdate,
    rule_violation,
)
from app.services.errors import ConflictError, DomainError, NotFoundError

log = logging.getLogger(__name__)


class CampaignNotFound(NotFoundError):
    """No campaign with that id."""

    slug = "campaign-not-found"


class InvalidCampaign(DomainError):
    """The settings break a campaign rule (window, boost or pin)."""

    status = 422
    slug = "invalid-campaign"


class UnknownProduct(DomainError):
    """The campaign names a product the catalogue does not hold."""

    status = 422
    slug = "unknown-product"


class CampaignEnded(ConflictError):
    """The campaign has ended; it stays on record and cannot change."""

    slug = "campaign-ended"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def status_of(campaign: Campaign, now: datetime) -> CampaignStatus:
    """Where the campaign stands at ``now``; ``live`` means requests are promoted by it."""
    if campaign.ends_at is not None and campaign.ends_at <= now:
        return "ended"
    if not campaign.enabled:
        return "disabled"
    if campaign.starts_at is not None and campaign.starts_at > now:
        return "scheduled"
    return "live"


def _live(now: datetime) -> ColumnElement[bool]:
    # Each part is true or false, never NULL, so its negation is exact too.
    return and_(
        Campaign.enabled.is_(True),
        or_(Campaign.starts_at.is_(None), Campaign.starts_at <= now),
        or_(Campaign.ends_at.is_(None), Campaign.ends_at > now),
    )


def public(campaign: Campaign, now: datetime | None = None) -> CampaignPublic:
    """The campaign as the API and CLI show it."""
    return CampaignPublic(
        id=campaign.id,
        name=campaign.name,
        product_id=campaign.product_id,
        placement=campaign.placement,
        boost=campaign.boost,
        pin_rank=campaign.pin_rank,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        enabled=campaign.enabled,
        created_at=campaign.created_at,
        status=status_of(campaign, _now(now)),
    )


def _get(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(f"no campaign with id {campaign_id}")
    return campaign


def _open(session: Session, campaign_id: int, now: datetime) -> Campaign:
    campaign = _get(session, campaign_id)
    if status_of(campaign, now) == "ended":
        raise CampaignEnded(
            f"campaign {campaign_id} ended at {campaign.ends_at:%Y-%m-%d %H:%M:%S} UTC; "
            "it stays on record and cannot change (create a new campaign instead)"
        )
    return campaign


def create(
    session: Session, data: CampaignCreate, actor: str | None = None, now: datetime | None = None
) -> CampaignPublic:
    """Create a campaign; it is served from the next promotion refresh."""
    now = _now(now)
    if session.scalar(select(Product.id).where(Product.product_id == data.product_id)) is None:
        raise UnknownProduct(f"no product with id {data.product_id!r}")
    if data.ends_at is not None and data.ends_at <= now:
        raise InvalidCampaign("ends_at is in the past: the campaign would never run")
    campaign = Campaign(**data.model_dump())
    session.add(campaign)
    session.commit()
    log.info(
        "campaign %s created for product %s by %s", campaign.id, campaign.product_id, actor or "-"
    )
    return public(campaign, now)


def read(session: Session, campaign_id: int, now: datetime | None = None) -> CampaignPublic:
    """One campaign by id."""
    return public(_get(session, campaign_id), now)


def list_campaigns(
    session: Session,
    *,
    active: bool | None = None,
    placement: str | None = None,
    product_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> CampaignsPublic:
    """Campaigns newest first. ``active`` keeps those live now (or, if false, all the others);
    ``placement`` keeps those that apply there, every-placement campaigns included."""
    now = _now(now)
    query = select(Campaign)
    if active is not None:
        query = query.where(_live(now) if active else not_(_live(now)))
    if placement is not None:
        query = query.where(or_(Campaign.placement.is_(None), Campaign.placement == placement))
    if product_id is not None:
        query = query.where(Campaign.product_id == product_id)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Campaign.id.desc()).limit(limit).offset(offset)).all()
    return CampaignsPublic(data=[public(c, now) for c in rows], count=count)


def update(
    session: Session,
    campaign_id: int,
    data: CampaignUpdate,
    actor: str | None = None,
    now: datetime | None = None,
) -> CampaignPublic:
    """Change an open campaign; the result must still be a valid campaign."""
    now = _now(now)
    campaign = _open(session, campaign_id, now)
    changes = data.model_dump(exclude_unset=True)
    problem = rule_violation(
        changes.get("boost", campaign.boost),
        changes.get("pin_rank", campaign.pin_rank),
        changes.get("starts_at", campaign.starts_at),
        changes.get("ends_at", campaign.ends_at),
    )
    if problem:
        raise InvalidCampaign(problem)
    if "ends_at" in changes and changes["ends_at"] is not None and changes["ends_at"] <= now:
        raise InvalidCampaign(
            "ends_at is in the past; to stop a campaign now, end it instead"
            f" (POST /v1/campaigns/{campaign_id}/end or `finrec campaigns end {campaign_id}`)"
        )
    for name, value in changes.items():
        setattr(campaign, name, value)
    session.commit()
    log.info("campaign %s changed (%s) by %s", campaign_id, ", ".join(changes), actor or "-")
    return public(campaign, now)


def end(
    session: Session, campaign_id: int, actor: str | None = None, now: datetime | None = None
) -> CampaignPublic:
    """End a campaign now and keep it on record; a scheduled one gets an empty window."""
    now = _now(now)
    campaign = _open(session, campaign_id, now)
    if campaign.starts_at is not None and campaign.starts_at > now:
        campaign.starts_at = now  # it never ran: the empty window [now, now) says so
    campaign.ends_at = now
    session.commit()
    log.info("campaign %s ended by %s", campaign_id, actor or "-")
    return public(campaign, now)
