"""Helpers shared by CLI commands: settings, clean failures, consoles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.db.session import make_engine, make_session_factory, session_scope
from app.services.errors import DomainError
from app.settings import Settings

T = TypeVar("T")

err_console = Console(stderr=True)
console = Console()

# Exit codes are part of the interface (documented in the README).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INVALID_DATA = 3
EXIT_CONFIG = 4


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print a clear one-line error to stderr and exit non-zero (never a traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"FINREC_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid configuration: {problems}", EXIT_CONFIG)


@contextmanager
def database_session(
    exit_code: Callable[[DomainError], int], settings: Settings | None = None
) -> Iterator[Session]:
    """One transaction for a command; a domain error or database error becomes a clean exit
    (``exit_code`` maps each command's domain errors to its documented codes)."""
    engine = make_engine((settings or load_settings()).database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    except DomainError as exc:
        fail(str(exc), exit_code(exc))
    except SQLAlchemyError as exc:
        fail(f"database error (run `finrec db upgrade`?): {exc}")
    finally:
        engine.dispose()


def run_in_session(
    action: Callable[[Session], T],
    exit_code: Callable[[DomainError], int],
    settings: Settings | None = None,
) -> T:
    """``action(session)`` inside :func:`database_session`."""
    with database_session(exit_code, settings) as session:
        return action(session)


def parse_moment(option: str, text: str | None) -> datetime | None:
    """An ISO 8601 date or date-time from option ``option``; without a time zone it is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} must be an ISO date or date-time, got {text!r}", EXIT_USAGE)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
