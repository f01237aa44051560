"""``finrec decisions``: show a customer's decision records, prune those past retention."""

from __future__ import annotations

from datetime import UTC

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from app.cli._common import (
    EXIT_INVALID_DATA,
    EXIT_USAGE,
    console,
    fail,
    load_settings,
    parse_moment,
)
from app.db.session import make_engine, make_session_factory
from app.schemas.decisions import DecisionPublic, DecisionsPublic, PruneResult
from app.services import decisions
from app.services.errors import DomainError, NotFoundError

decisions_app = typer.Typer(
    help="Decision records: what each served list showed, why, and what the rules kept off.",
    no_args_is_help=True,
)


def _print_record(record: DecisionPublic) -> None:
    served = record.served_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    arm = f" · experiment {record.experiment}/{record.variant}" if record.experiment else ""
    console.print(
        f"[bold]{record.recommendation_id}[/] {served} UTC · {record.strategy} "
        f"{record.model_version or '-'} · {record.served_from}"
        f"{' (degraded)' if record.degraded else ''} · basis {record.basis or '-'} · "
        f"risk class {record.risk_class if record.risk_class is not None else '-'} · "
        f"policy {record.policy_version or '-'}{arm}",
        highlight=False,
    )
    table = Table("rank", "product", "score", "reasons")
    for item in record.items:
        table.add_row(str(item.rank), item.product_id, f"{item.score:.4f}", ", ".join(item.reasons))
    console.print(table)
    if record.removed:
        kept_off = ", ".join(f"{r.product_id} ({r.rule})" for r in record.removed)
        console.print(f"  removed: {kept_off}", highlight=False)


@decisions_app.command("show")
def show(
    customer_id: str = typer.Argument(..., help="External customer id."),
    limit: int = typer.Option(10, "--limit", min=1, max=500, help="Records per page."),
    cursor: str | None = typer.Option(None, "--cursor", help="next_cursor of a previous page."),
    since: str | None = typer.Option(None, "--since", help="From (ISO; UTC if no zone)."),
    until: str | None = typer.Option(None, "--until", help="Before (ISO; UTC if no zone)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A customer's decision records, newest first."""
    start, end = parse_moment("--since", since), parse_moment("--until", until)
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            page: DecisionsPublic = decisions.list_decisions(
                session, customer_id, limit=limit, cursor=cursor, since=start, until=end
            )
    except NotFoundError as exc:
        fail(str(exc), EXIT_INVALID_DATA)
    except DomainError as exc:
        fail(str(exc), EXIT_USAGE)
    except SQLAlchemyError as exc:
        fail(f"database error (run `finrec db upgrade`?): {exc}")
    finally:
        engine.dispose()
    if as_json:
        console.print_json(page.model_dump_json())
        return
    if not page.data:
        console.print(f"no decision records for {customer_id} in that range", highlight=False)
    for record in page.data:
        _print_record(record)
    if page.next_cursor:
        console.print(f"older records: --cursor {page.next_cursor}", highlight=False)


@decisions_app.command("prune")
def prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    days: int | None = typer.Option(
        None, "--days", min=1, help="Override FINREC_DECISION_RETENTION_DAYS."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete decision records older than the retention period, in batches."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        result: PruneResult = decisions.prune(
            make_session_factory(engine),
            days or settings.decision_retention_days,
            dry_run=dry_run,
        )
    except SQLAlchemyError as exc:
        fail(f"database error (run `finrec db upgrade`?): {exc}")
    finally:
        engine.dispose()
    if as_json:
        console.print_json(result.model_dump_json())
        return
    verb = "would delete" if result.dry_run else "deleted"
    console.print(
        f"{verb} {result.records} decision records served before "
        f"{result.cutoff.astimezone(UTC).isoformat(timespec='seconds')}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(decisions_app, name="decisions")
