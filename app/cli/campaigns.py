"""``finrec campaigns``: create, list and end product boosts and pins (served as promotions)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.table import Table
from sqlalchemy.orm import Session

from app.cli._common import (
    EXIT_FAILURE,
    EXIT_INVALID_DATA,
    EXIT_USAGE,
    console,
    err_console,
    fail,
    load_settings,
    parse_moment,
    run_in_session,
)
from app.schemas.campaigns import CampaignCreate, CampaignPublic
from app.services import campaigns
from app.services.errors import DomainError, NotFoundError
from app.settings import Settings

campaigns_app = typer.Typer(
    help="Campaigns: boosts and pins of a product, always labelled as promotions.",
    no_args_is_help=True,
)

T = TypeVar("T")


def _exit_code(exc: DomainError) -> int:
    if isinstance(exc, campaigns.InvalidCampaign):
        return EXIT_USAGE
    if isinstance(exc, NotFoundError | campaigns.UnknownProduct):
        return EXIT_INVALID_DATA
    return EXIT_FAILURE


def _run(action: Callable[[Session], T], settings: Settings | None = None) -> T:
    return run_in_session(action, _exit_code, settings)


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


def _write(action: Callable[[Session], CampaignPublic], as_json: bool) -> None:
    """Run a change, show the campaign and say when running servers will see it."""
    settings = load_settings()
    _show(_run(action, settings), as_json)
    err_console.print(
        "running servers apply this within "
        f"{settings.catalog_refresh_seconds:g} s (FINREC_CATALOG_REFRESH_SECONDS)",
        highlight=False,
    )


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else ""


def _show(campaign: CampaignPublic, as_json: bool) -> None:
    if as_json:
        console.print_json(campaign.model_dump_json())
        return
    pin = f" · pin {campaign.pin_rank}" if campaign.pin_rank else ""
    console.print(
        f"campaign {campaign.id} [bold]{campaign.name}[/] ({campaign.status}): "
        f"{campaign.product_id} · placement {campaign.placement or 'all'} · "
        f"boost {campaign.boost:g}{pin} · "
        f"{_when(campaign.starts_at) or 'now'} → {_when(campaign.ends_at) or 'open'}",
        highlight=False,
    )


@campaigns_app.command("create")
def create(
    product: str = typer.Option(..., "--product", help="External product id."),
    name: str = typer.Option(..., "--name", help="What the campaign is called."),
    boost: float = typer.Option(0.0, "--boost", help="Score lift in score spreads (0-10)."),
    pin: int | None = typer.Option(None, "--pin", help="Serve the product at this rank (1-50)."),
    placement: str | None = typer.Option(None, "--placement", help="Only this placement."),
    starts: str | None = typer.Option(None, "--starts", help="Start (ISO; UTC if no zone)."),
    ends: str | None = typer.Option(None, "--ends", help="End (ISO; UTC if no zone)."),
    disabled: bool = typer.Option(False, "--disabled", help="Create it paused."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a campaign. The policy gate still decides who may be shown the product."""
    raw = {
        "name": name,
        "product_id": product,
        "placement": placement,
        "boost": boost,
        "pin_rank": pin,
        "starts_at": parse_moment("--starts", starts),
        "ends_at": parse_moment("--ends", ends),
        "enabled": not disabled,
    }
    try:
        data = CampaignCreate.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'campaign'}: {_message(e['msg'])}"
            for e in exc.errors()
        )
        fail(f"invalid campaign: {problems}", EXIT_USAGE)
    _write(lambda s: campaigns.create(s, data, _actor()), as_json)


@campaigns_app.command("list")
def list_campaigns(
    active: bool = typer.Option(False, "--active", help="Only campaigns live now."),
    placement: str | None = typer.Option(None, "--placement", help="Those that apply there."),
    product: str | None = typer.Option(None, "--product", help="Only this product."),
    limit: int = typer.Option(100, "--limit", min=1, max=500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List campaigns, newest first, with their status now."""
    found = _run(
        lambda s: campaigns.list_campaigns(
            s, active=True if active else None, placement=placement, product_id=product, limit=limit
        )
    )
    if as_json:
        console.print_json(found.model_dump_json())
        return
    if not found.data:
        console.print("no campaigns; create one with `finrec campaigns create`")
        return
    table = Table("id", "name", "status", "product", "placement", "boost", "pin", "from", "until")
    for c in found.data:
        table.add_row(
            str(c.id),
            c.name,
            c.status,
            c.product_id,
            c.placement or "all",
            f"{c.boost:g}",
            str(c.pin_rank or ""),
            _when(c.starts_at),
            _when(c.ends_at),
        )
    console.print(table)
    if found.count > len(found.data):
        console.print(f"{len(found.data)} of {found.count} shown (--limit)")


@campaigns_app.command("end")
def end(
    campaign_id: int = typer.Argument(..., min=1, help="Campaign id."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """End a campaign now; it stays on record (campaigns are never deleted)."""
    _write(lambda s: campaigns.end(s, campaign_id, _actor()), as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(campaigns_app, name="campaigns")
