"""``finrec experiments``: define, start, pause, stop, report and simulate A/B experiments."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

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
    run_in_session,
)
from app.schemas.experiments import ExperimentCreate, ExperimentPublic, ResultsPublic
from app.services.errors import DomainError, NotFoundError
from app.services.experiments import admin
from app.services.experiments.errors import InvalidExperiment
from app.services.experiments.results import experiment_results, results_chart
from app.settings import Settings

experiments_app = typer.Typer(help="A/B experiments between strategies.", no_args_is_help=True)

T = TypeVar("T")


def _exit_code(exc: DomainError) -> int:
    if isinstance(exc, InvalidExperiment):
        return EXIT_USAGE
    if isinstance(exc, NotFoundError):
        return EXIT_INVALID_DATA
    return EXIT_FAILURE


def _run(action: Callable[[Session], T], settings: Settings | None = None) -> T:
    return run_in_session(action, _exit_code, settings)


def _actor(actor: str | None) -> str | None:
    return actor or os.environ.get("USER")


def _show(experiment: ExperimentPublic, as_json: bool) -> None:
    if as_json:
        console.print_json(experiment.model_dump_json())
        return
    console.print(
        f"[bold]{experiment.key}[/] {experiment.status} · traffic {experiment.traffic:.0%} · "
        f"placements {', '.join(experiment.placements) or 'all'} · salt {experiment.salt}",
        highlight=False,
    )
    table = Table("variant", "role", "weight", "share", "strategy", "model version", "k")
    for v in experiment.variants:
        table.add_row(
            v.name,
            v.role,
            f"{v.weight:g}",
            f"{v.share:.1%}",
            v.strategy,
            v.model_version or "",
            str(v.k or ""),
        )
    console.print(table)


def _parse_variant(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) not in (4, 5):
        fail(f"--variant takes NAME:ROLE:WEIGHT:STRATEGY[:MODEL_VERSION], got {text!r}", EXIT_USAGE)
    variant: dict[str, Any] = {
        "name": parts[0],
        "role": parts[1],
        "weight": parts[2],
        "strategy": parts[3],
    }
    if len(parts) == 5 and parts[4]:
        variant["model_version"] = parts[4]
    return variant


@experiments_app.command("create")
def create(
    key: str | None = typer.Argument(None, help="Experiment key (omit with --file)."),
    variant: list[str] = typer.Option(
        [], "--variant", "-v", help="NAME:ROLE:WEIGHT:STRATEGY[:MODEL_VERSION]; repeat per arm."
    ),
    traffic: float = typer.Option(1.0, "--traffic", help="Share of customers enrolled (0-1)."),
    placement: list[str] = typer.Option([], "--placement", "-p", help="Placement; repeatable."),
    salt: str | None = typer.Option(None, "--salt", help="Hash salt (random when omitted)."),
    allow_overlap: bool = typer.Option(False, "--allow-overlap"),
    description: str | None = typer.Option(None, "--description"),
    file: Path | None = typer.Option(None, "--file", help="A JSON definition instead."),
    actor: str | None = typer.Option(None, "--actor"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a draft experiment from options or a JSON file."""
    if file is not None:
        try:
            raw: Any = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"cannot read {file}: {exc}", EXIT_USAGE)
    else:
        if key is None:
            fail("give an experiment KEY (or --file)", EXIT_USAGE)
        raw = {
            "key": key,
            "traffic": traffic,
            "placements": placement,
            "salt": salt,
            "allow_overlap": allow_overlap,
            "description": description,
            "variants": [_parse_variant(v) for v in variant],
        }
    try:
        data = ExperimentCreate.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'definition'}: {e['msg']}"
            for e in exc.errors()
        )
        fail(f"invalid experiment: {problems}", EXIT_USAGE)
    _show(_run(lambda s: admin.create(s, data, _actor(actor))), as_json)


@experiments_app.command("list")
def list_experiments(
    status: str | None = typer.Option(None, "--status"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List experiments, newest first."""
    found = _run(lambda s: admin.list_all(s, status))
    if as_json:
        console.print_json(found.model_dump_json())
        return
    if not found.data:
        console.print("no experiments; create one with `finrec experiments create`")
        return
    table = Table("key", "status", "traffic", "placements", "variants", "started (UTC)")
    for e in found.data:
        table.add_row(
            e.key,
            e.status,
            f"{e.traffic:.0%}",
            ", ".join(e.placements) or "all",
            ", ".join(f"{v.name} ({v.strategy})" for v in e.variants),
            e.started_at.strftime("%Y-%m-%d %H:%M") if e.started_at else "",
        )
    console.print(table)


@experiments_app.command("show")
def show(key: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one experiment and its variants."""
    _show(_run(lambda s: admin.read(s, key)), as_json)


def _state_command(action: str, summary: str) -> None:
    def command(
        key: str = typer.Argument(..., help="Experiment key."),
        actor: str | None = typer.Option(None, "--actor"),
    ) -> None:
        experiment = _run(lambda s: admin.change_status(s, key, action, _actor(actor)))
        console.print(f"{experiment.key}: {experiment.status}", highlight=False)

    command.__doc__ = summary
    experiments_app.command(action)(command)


_state_command("start", "Start (or resume) an experiment; API replicas pick it up on refresh.")
_state_command("pause", "Pause a running experiment.")
_state_command("stop", "Stop an experiment for good.")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _print_results(results: ResultsPublic) -> None:
    table = Table(
        "variant",
        "role",
        "exposures",
        "customers",
        "CTR",
        "conversion",
        "served by",
        title=f"{results.experiment} ({results.status})",
    )
    for v in results.variants:
        table.add_row(
            v.variant,
            v.role,
            str(v.exposures),
            str(v.customers),
            _pct(v.ctr),
            _pct(v.conversion),
            ", ".join(f"{name} {n}" for name, n in sorted(v.served_by.items())),
        )
    console.print(table)
    versus = Table("variant", "metric", "difference", "95% CI", "p-value", title="vs control")
    for v in results.variants:
        for c in v.comparisons:
            versus.add_row(
                v.variant,
                c.metric,
                f"{c.difference * 100:+.2f} pp",
                f"[{c.ci_low * 100:+.2f}, {c.ci_high * 100:+.2f}] pp",
                "—" if c.p_value is None else f"{c.p_value:.3g}",
            )
    if versus.row_count:
        console.print(versus)
    colour = {"ok": "green", "warn": "yellow", "alert": "bold red"}.get(results.srm.status, "")
    line = f"SRM: {results.srm.status} — {results.srm.message}"
    console.print(f"[{colour}]{line}[/]" if colour else line, highlight=False)


@experiments_app.command("report")
def report(
    key: str,
    out: Path | None = typer.Option(None, "--out", help="Write results.json and results.png."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per-variant exposures, customers, CTR and conversion vs control, with the SRM check."""
    settings = load_settings()
    results = _run(lambda s: experiment_results(s, key, settings.takeup_event_types), settings)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(results.model_dump_json(indent=2), encoding="utf-8")
        (out / "results.png").write_bytes(results_chart(results))
    if as_json:
        console.print_json(results.model_dump_json())
    else:
        _print_results(results)
        if out is not None:
            console.print(f"wrote {out / 'results.json'} and {out / 'results.png'}")
    if results.srm.status == "alert":
        err_console.print("[bold red]sample ratio mismatch: do not trust these results[/]")


@experiments_app.command("simulate")
def simulate(
    key: str,
    cutoff: str | None = typer.Option(
        None, "--cutoff", help="Replay events after this ISO time (default: last 20%)."
    ),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.01, max=0.99),
    from_files: Path | None = typer.Option(
        None, "--from-files", help="Read import-contract files from this folder, not the database."
    ),
    k: int = typer.Option(10, "--k", min=1, max=50, help="List length for arms without k."),
    out: Path | None = typer.Option(None, "--out", help="Write the replay report as JSON."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replay a held-out window of the interaction log through every variant."""
    from app.jobs import training
    from app.services.experiments.simulate import arm_specs, simulate_dataset

    settings = load_settings()
    moment: datetime | None = None
    if cutoff is not None:
        try:
            moment = datetime.fromisoformat(cutoff.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--cutoff must be an ISO date or date-time, got {cutoff!r}", EXIT_USAGE)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    arms = _run(lambda s: arm_specs(s, key, k), settings)
    say = err_console.print if not as_json else (lambda _line: None)
    try:
        frames = training.load_frames(settings, from_files)
        dataset = training.build_dataset(frames, training.dataset_config(settings))
        result = simulate_dataset(
            key, dataset, arms, cutoff=moment, test_fraction=test_fraction, progress=say
        )
    except DomainError as exc:
        fail(str(exc), _exit_code(exc) if isinstance(exc, InvalidExperiment) else EXIT_INVALID_DATA)
    except ValueError as exc:
        fail(str(exc), EXIT_INVALID_DATA)
    body = result.to_json()
    if out is not None:
        out.write_text(json.dumps(body, indent=2), encoding="utf-8")
    if as_json:
        console.print_json(json.dumps(body))
        return
    table = Table("variant", "algorithm", "k", "hit rate", "nDCG", "Δ hit rate [95% CI]")
    for arm in result.arms:
        d = arm.difference.get("hit_rate")
        delta = (
            f"{d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else "control"
        )
        table.add_row(
            arm.name,
            arm.algorithm,
            str(arm.k),
            f"{arm.metrics['hit_rate']:.3f}",
            f"{arm.metrics['ndcg']:.3f}",
            delta,
        )
    console.print(table)
    console.print(
        f"window: {result.protocol.get('test_customers')} customers, "
        f"{result.protocol.get('test_pairs')} take-ups after the cutoff",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")
