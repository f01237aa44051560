"""``finrec train``: fit one algorithm on the current data, publish the artifact, register it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from app.cli._common import (
    EXIT_FAILURE,
    EXIT_INVALID_DATA,
    EXIT_USAGE,
    console,
    fail,
    load_settings,
)
from app.jobs import training
from app.services.errors import DomainError, InvalidArtifact, InvalidParams, TrainingDataError
from recommenders.errors import RecommenderError

# The names the engine is expected to offer; the live list comes from the model registry.
DOCUMENTED_ALGORITHMS = "popularity, als, bpr, itemknn, content, lightfm, ease, fusion"


def exit_code_for(exc: DomainError) -> int:
    """Bad input is a usage error, bad data is invalid data, anything else a failure."""
    if isinstance(exc, InvalidParams):
        return EXIT_USAGE
    if isinstance(exc, TrainingDataError | InvalidArtifact):
        return EXIT_INVALID_DATA
    return EXIT_FAILURE


class StageView:
    """Shows the running stage on a spinner and prints each finished stage with its time."""

    def __init__(self) -> None:
        self.status = console.status("starting", spinner="dots")
        self.current: str | None = None
        self.rows: dict[str, str] = {}
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        kind, _, count = message.removeprefix("reading ").partition(": ")
        if message.startswith("reading ") and count:
            # Row counts while reading: one growing label for the reading stage.
            self.rows[kind] = count.removesuffix(" rows")
            self.current = "read " + " · ".join(f"{k} {n}" for k, n in self.rows.items())
        else:
            self._finish()
            self.current = message
            self.started = time.perf_counter()
        self.status.update(f"{self.current} …")

    def note(self, message: str) -> None:
        """Close the running stage and print ``message`` as a result line."""
        self._finish()
        console.print(f"  {message}", highlight=False)

    def _finish(self) -> None:
        if self.current is not None:
            elapsed = time.perf_counter() - self.started
            console.print(f"[green]✓[/] {self.current} [dim]({elapsed:.1f}s)[/]", highlight=False)
        self.current = None

    def __enter__(self) -> StageView:
        self.status.start()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.status.stop()
        if exc_type is None:
            self._finish()


def _summary(result: training.TrainingResult) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    window = result.data.get("window")
    rows = [
        ("version", result.version),
        ("algorithm", result.algorithm),
        ("artifact", str(result.artifact_path)),
        ("sha256", result.artifact_sha256),
        ("params", json.dumps(result.params, sort_keys=True)),
        (
            "data",
            f"{result.data['customers']:,} customers · {result.data['products']:,} products · "
            f"{result.data['interactions']:,} customer-product pairs",
        ),
        ("window", f"{window[0]} → {window[1]}" if window else "no events"),
        ("metrics", json.dumps(result.metrics, sort_keys=True) if result.metrics else "none"),
        ("timings", " · ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())),
        ("serving", f"active for strategy {result.activated}" if result.activated else "no"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def train(
    algorithm: str = typer.Option(
        ..., "--algorithm", "-a", help=f"Model to train ({DOCUMENTED_ALGORITHMS})."
    ),
    param: list[str] = typer.Option(
        [],
        "--param",
        "-p",
        help="Model parameter key=value (JSON literal or text; dotted keys nest). Repeatable.",
    ),
    data_param: list[str] = typer.Option(
        [],
        "--data-param",
        help="Dataset setting key=value, e.g. half_life_days=90. Repeatable.",
    ),
    from_files: Path | None = typer.Option(
        None,
        "--from-files",
        help="Read customers/products/interactions (.parquet or .csv) from DIR, not the database.",
        file_okay=False,
    ),
    activate: bool = typer.Option(
        False, "--activate", help="Serve the new version for its algorithm's strategy."
    ),
    validate: bool = typer.Option(
        False,
        "--validate",
        help="First fit on all but the latest 20% of events and record validation metrics.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a model, save its artifact and register the new version."""
    settings = load_settings()
    try:
        params = training.parse_param_pairs(param)
        data_overrides = training.parse_param_pairs(data_param)
        view = StageView() if not as_json else None
        with view or contextlib.nullcontext():
            result = training.train(
                settings,
                algorithm,
                params,
                from_files=from_files,
                data_overrides=data_overrides,
                activate=activate,
                validate=validate,
                actor=os.environ.get("USER"),
                on_stage=view,
            )
    except DomainError as exc:
        fail(str(exc), exit_code_for(exc))
    except RecommenderError as exc:
        fail(f"training {algorithm} failed: {exc}")
    except SQLAlchemyError as exc:
        fail(f"database error (run `finrec db upgrade`?): {exc}")
    except OSError as exc:
        fail(f"cannot write the artifact: {exc}")
    if as_json:
        payload = {
            "version": result.version,
            "algorithm": result.algorithm,
            "artifact_path": str(result.artifact_path),
            "artifact_sha256": result.artifact_sha256,
            "params": result.params,
            "metrics": result.metrics,
            "data": result.data,
            "trained_at": result.trained_at.isoformat(),
            "activated": result.activated,
            "timings": result.timings,
        }
        console.print_json(json.dumps(payload))
        return
    console.print(_summary(result))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
