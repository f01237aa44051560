"""``finrec models``: list, inspect, activate, roll back, pin and retire model versions."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy.orm import Session

from app.cli._common import EXIT_INVALID_DATA, console, fail, run_in_session
from app.cli.train import exit_code_for
from app.db.models import ModelVersion
from app.services import registry

models_app = typer.Typer(
    help="Registered model versions and what serves each strategy.", no_args_is_help=True
)

T = TypeVar("T")
_HEADLINE_METRICS = ("validation_ndcg@10", "tuning_ndcg@10", "ndcg@10")


def _run(action: Callable[[Session], T]) -> T:
    return run_in_session(action, exit_code_for)


def _actor(actor: str | None) -> str | None:
    return actor or os.environ.get("USER")


def _headline(metrics: dict[str, Any]) -> str:
    for name in _HEADLINE_METRICS:
        if isinstance(metrics.get(name), int | float):
            return f"{name} {metrics[name]:.4f}"
    return ""


def _public(row: ModelVersion, serves: list[str]) -> dict[str, Any]:
    return {
        "version": row.version,
        "algorithm": row.algorithm,
        "status": row.status,
        "serves": serves,
        "trained_at": row.trained_at.isoformat(),
        "data_window": [
            row.data_window_start.isoformat() if row.data_window_start else None,
            row.data_window_end.isoformat() if row.data_window_end else None,
        ],
        "data_fingerprint": row.data_fingerprint,
        "params": row.params,
        "metrics": row.metrics,
        "artifact_path": row.artifact_path,
        "artifact_sha256": row.artifact_sha256,
    }


def _serving(session: Session) -> dict[str, list[str]]:
    by_version: dict[str, list[str]] = {}
    for strategy, version in sorted(registry.active_versions(session).items()):
        by_version.setdefault(version, []).append(strategy)
    return by_version


@models_app.command("list")
def list_models(
    algorithm: str | None = typer.Option(None, "--algorithm", "-a", help="Only this algorithm."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered versions, newest first, with the strategies each one serves."""

    def action(session: Session) -> list[dict[str, Any]]:
        serving = _serving(session)
        return [
            _public(row, serving.get(row.version, []))
            for row in registry.list_versions(session, algorithm)
        ]

    rows = _run(action)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print(
            "no model versions registered; run `finrec train --algorithm NAME`", soft_wrap=True
        )
        return
    table = Table("algorithm", "status", "serves", "trained at (UTC)", "metric")
    # Version ids are what operators copy into `activate`: never truncate or wrap them.
    table.columns.insert(0, Column("version", no_wrap=True, overflow="fold"))
    for row in rows:
        table.add_row(
            row["version"],
            row["algorithm"],
            row["status"],
            ", ".join(row["serves"]) or "-",
            row["trained_at"][:19].replace("T", " "),
            _headline(row["metrics"]),
        )
    (console if console.is_terminal else Console(width=160)).print(table)


@models_app.command("show")
def show(version: str = typer.Argument(..., help="Version id.")) -> None:
    """Show everything recorded about one version."""

    def action(session: Session) -> dict[str, Any]:
        row = registry.get_version(session, version)
        return _public(row, _serving(session).get(row.version, []))

    console.print_json(json.dumps(_run(action)))


@models_app.command("activate")
def activate(
    version: str = typer.Argument(..., help="Version id to serve."),
    strategy: str | None = typer.Option(
        None, "--strategy", "-s", help="Strategy to serve (default: the version's algorithm)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a pinned strategy's version."),
    actor: str | None = typer.Option(None, "--actor", help="Who is acting (default: $USER)."),
) -> None:
    """Serve VERSION for a strategy, after checking its artifact on disk is intact."""

    def action(session: Session) -> tuple[str, str | None]:
        row = registry.get_version(session, version)
        manifest = registry.verified_manifest(Path(row.artifact_path))
        if manifest.get("content_sha256") != row.artifact_sha256:
            fail(
                f"artifact of {version} at {row.artifact_path} does not match the registered "
                "hash; it was replaced after registration",
                EXIT_INVALID_DATA,
            )
        result = registry.activate(session, version, strategy, _actor(actor), force=force)
        return result.strategy, result.previous_version

    served, previous = _run(action)
    replaced = f" (replacing {previous})" if previous else ""
    console.print(f"{version} now serves strategy {served}{replaced}", soft_wrap=True)


@models_app.command("rollback")
def rollback(
    strategy: str = typer.Argument(..., help="Strategy to roll back, e.g. als or fusion."),
    force: bool = typer.Option(False, "--force", help="Roll back even if pinned."),
    actor: str | None = typer.Option(None, "--actor", help="Who is acting (default: $USER)."),
) -> None:
    """Serve the strategy's previous version again."""

    def action(session: Session) -> str:
        return registry.rollback(session, strategy, _actor(actor), force=force).version

    console.print(f"strategy {strategy} rolled back to {_run(action)}", soft_wrap=True)


@models_app.command("pin")
def pin(strategy: str = typer.Argument(..., help="Strategy to pin.")) -> None:
    """Pin a strategy to its current version (training with --activate leaves it alone)."""
    version = _run(lambda s: registry.pin(s, strategy, True).version)
    console.print(f"strategy {strategy} pinned to {version}", soft_wrap=True)


@models_app.command("unpin")
def unpin(strategy: str = typer.Argument(..., help="Strategy to unpin.")) -> None:
    """Allow a pinned strategy's version to change again."""
    _run(lambda s: registry.pin(s, strategy, False))
    console.print(f"strategy {strategy} unpinned", soft_wrap=True)


@models_app.command("retire")
def retire(version: str = typer.Argument(..., help="Version id to retire.")) -> None:
    """Mark a version retired so it can never serve again (its files stay on disk)."""
    _run(lambda s: registry.retire(s, version))
    console.print(f"{version} retired", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
