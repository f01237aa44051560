"""``finrec db``: schema migrations (Alembic), always a separate step from serving."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from app.cli._common import console, fail, load_settings
from app.db import migrate

db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = load_settings()
    try:
        migrate.upgrade(settings.database_url, revision)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"migration failed: {exc}")
    console.print(f"database at revision {migrate.current_revision(settings.database_url)}")


@db_app.command("downgrade")
def downgrade(
    revision: str = typer.Argument(..., help="Target revision, e.g. -1 or base."),
) -> None:
    """Revert migrations down to REVISION."""
    settings = load_settings()
    try:
        migrate.downgrade(settings.database_url, revision)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"migration failed: {exc}")
    console.print(f"database at revision {migrate.current_revision(settings.database_url)}")


@db_app.command("current")
def current() -> None:
    """Print the database's current revision."""
    settings = load_settings()
    try:
        console.print(migrate.current_revision(settings.database_url) or "empty (no revision)")
    except SQLAlchemyError as exc:
        fail(f"cannot read the database: {exc}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
