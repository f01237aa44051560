"""Campaigns (admin): boosts and pins of one product, always served labelled as promotions.

A write takes effect on this replica at once (its promotion book is reloaded before the answer)
and on other replicas at their next catalogue refresh (``FINREC_CATALOG_REFRESH_SECONDS``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from app.api.auth import AUTH_RESPONSES, Principal, require_scope
from app.api.deps import SessionDep
from app.schemas.campaigns import CampaignCreate, CampaignPublic, CampaignsPublic, CampaignUpdate
from app.schemas.problems import problem_responses
from app.services import campaigns
from app.services.recommend.promotions import PromotionBook

router = APIRouter(
    prefix="/v1/campaigns",
    tags=["campaigns"],
    dependencies=[require_scope("admin")],
    responses=AUTH_RESPONSES,
)

CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Campaign id.")]


def _refresh_local(request: Request) -> None:
    """Serve the change from this replica's next request, not its next refresh."""
    book = getattr(request.app.state, "promotions", None)
    if isinstance(book, PromotionBook):
        book.refresh()


def _actor(request: Request) -> str | None:
    """The key that made the change, for the log line (never the secret)."""
    principal = getattr(request.state, "principal", None)
    return principal.name if isinstance(principal, Principal) else None


@router.post(
    "",
    operation_id="campaigns-create",
    status_code=201,
    response_model=CampaignPublic,
    responses=problem_responses(),
)
def create_campaign(body: CampaignCreate, session: SessionDep, request: Request) -> CampaignPublic:
    """Create a boost and/or pin of one product; served from the next request on."""
    result = campaigns.create(session, body, _actor(request))
    _refresh_local(request)
    return result


@router.get(
    "",
    operation_id="campaigns-list",
    response_model=CampaignsPublic,
    responses=problem_responses(),
)
def list_campaigns(
    session: SessionDep,
    active: Annotated[
        bool | None, Query(description="true: only live campaigns; false: all the others.")
    ] = None,
    placement: Annotated[
        str | None,
        Query(max_length=64, description="Campaigns that apply there (every-placement ones too)."),
    ] = None,
    product_id: Annotated[
        str | None, Query(max_length=64, description="Only this product.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CampaignsPublic:
    """List campaigns, newest first, with their status now."""
    return campaigns.list_campaigns(
        session,
        active=active,
        placement=placement,
        product_id=product_id,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{campaign_id}",
    operation_id="campaigns-get",
    response_model=CampaignPublic,
    responses=problem_responses(404),
)
def read_campaign(campaign_id: CampaignId, session: SessionDep) -> CampaignPublic:
    """Read one campaign."""
    return campaigns.read(session, campaign_id)


@router.patch(
    "/{campaign_id}",
    operation_id="campaigns-update",
    response_model=CampaignPublic,
    responses=problem_responses(404, 409),
)
def update_campaign(
    campaign_id: CampaignId, body: CampaignUpdate, session: SessionDep, request: Request
) -> CampaignPublic:
    """Enable, disable or change a campaign's window, boost or pin; an ended one is final."""
    result = campaigns.update(session, campaign_id, body, _actor(request))
    _refresh_local(request)
    return result


@router.post(
    "/{campaign_id}/end",
    operation_id="campaigns-end",
    response_model=CampaignPublic,
    responses=problem_responses(404, 409),
)
def end_campaign(campaign_id: CampaignId, session: SessionDep, request: Request) -> CampaignPublic:
    """End a campaign now; it is kept on record (campaigns are never deleted)."""
    result = campaigns.end(session, campaign_id, _actor(request))
    _refresh_local(request)
    return result
