"""``finrec serve``: run the API under uvicorn."""

from __future__ import annotations

import typer
import uvicorn

from app.cli._common import load_settings


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
) -> None:
    """Start the HTTP API (run `finrec db upgrade` first)."""
    settings = load_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
