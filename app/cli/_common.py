"""Helpers shared by CLI commands: settings, clean failures, consoles."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from app.settings import Settings

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
