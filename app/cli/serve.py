"""``finrec serve``: run the API under uvicorn, logging through the app's one configuration."""

from __future__ import annotations

from typing import Any

import typer
import uvicorn

from app.cli._common import load_settings
from app.observability.logging import configure_logging
from app.settings import Settings


def uvicorn_options(
    settings: Settings, *, host: str, port: int, workers: int = 1, reload: bool = False
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` as ``finrec serve`` uses them.

    ``log_config=None`` keeps uvicorn from installing its own handlers (the app's formatter
    handles its error log) and ``access_log=False`` silences its access line, which prints the
    request path and so the customer id; the app's middleware logs the route template instead.
    """
    return {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "reload": reload,
        "log_config": None,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "proxy_headers": True,
    }


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(
        1,
        min=1,
        max=64,
        help="Worker processes. Metrics are per worker: prefer one worker per container.",
    ),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
) -> None:
    """Start the HTTP API (run `finrec db upgrade` first)."""
    settings = load_settings()
    # The server's own start-up lines go through the same formatter as the app's (each worker
    # configures itself again in the app factory).
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(
        "app.main:create_app",
        **uvicorn_options(settings, host=host, port=port, workers=workers, reload=reload),
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
