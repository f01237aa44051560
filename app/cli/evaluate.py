"""``finrec evaluate``: every model against popularity on a time or random split."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from app.cli._common import EXIT_INVALID_DATA, EXIT_USAGE, console, fail, load_settings
from app.cli.train import StageView, exit_code_for
from app.jobs import training
from app.services.errors import DomainError, InvalidParams
from recommenders.errors import RecommenderError
from recommenders.evaluation.metrics import METRICS
from recommenders.evaluation.report import BASELINE, Report
from recommenders.evaluation.runner import SplitSpec, evaluate_dataset


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        fail(f"{option} takes comma-separated integers, got {text!r}", EXIT_USAGE)
    if not values or values[0] < 1:
        fail(f"{option} needs positive integers, got {text!r}", EXIT_USAGE)
    return values


def _cutoff(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--cutoff must be an ISO date or date-time, got {text!r}", EXIT_USAGE)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _table(report: Report) -> Table:
    k = report.primary_k
    base = next((r for r in report.results if r.name == BASELINE), None)
    table = Table(title=f"{report.protocol.get('kind', '')} split, k = {k}")
    table.add_column("model")
    for metric in METRICS:
        table.add_column(f"{_LABELS[metric]}@{k}", justify="right")
    table.add_column("vs pop.", justify="right")
    table.add_column("fit s", justify="right")
    for result in sorted(report.results, key=lambda r: -_finite(r.metrics[k]["ndcg"])):
        lift = "—"
        if base is not None and result is not base and base.metrics[k]["ndcg"] > 0:
            lift = f"{result.metrics[k]['ndcg'] / base.metrics[k]['ndcg'] - 1:+.0%}"
        cells = [_fmt(result.metrics[k][m]) for m in METRICS]
        table.add_row(result.name, *cells, lift, f"{result.fit_seconds:.1f}")
    return table


_LABELS = {
    "precision": "P",
    "recall": "R",
    "map": "MAP",
    "ndcg": "nDCG",
    "hit_rate": "HR",
    "coverage": "Cov",
    "diversity": "Div",
    "novelty": "Nov",
}


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _fmt(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "—"


def evaluate(
    split: str = typer.Option("time", "--split", help="time (the bank's question) or random."),
    cutoff: str | None = typer.Option(
        None,
        "--cutoff",
        help="Time split date (ISO); default: the latest --test-fraction of events is test.",
    ),
    test_fraction: float = typer.Option(
        0.2, "--test-fraction", min=0.01, max=0.99, help="Share of events (time) or take-ups."
    ),
    algorithms: str | None = typer.Option(
        None, "--algorithms", help="Comma-separated names (default: every registered model)."
    ),
    k: str = typer.Option("5,10,20", "--k", help="Comma-separated list lengths."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="Model parameter ALGORITHM.key=value. Repeatable."
    ),
    seed: int = typer.Option(42, "--seed", help="Seed of the random split."),
    out: Path | None = typer.Option(
        None, "--out", file_okay=False, help="Folder for report.json, report.md and report.png."
    ),
    from_files: Path | None = typer.Option(
        None, "--from-files", file_okay=False, help="Read import-contract files from DIR."
    ),
) -> None:
    """Evaluate models against popularity and save the report as JSON, Markdown and PNG."""
    settings = load_settings()
    if split not in ("time", "random"):
        fail(f"--split must be time or random, got {split!r}", EXIT_USAGE)
    ks = _int_list(k, "--k")
    when = _cutoff(cutoff)
    names = (
        [a.strip() for a in algorithms.split(",") if a.strip()]
        if algorithms
        else training.known_algorithms()
    )
    try:
        params = training.parse_param_pairs(param)
        unknown = sorted(set(params) - set(names) - {BASELINE})
        if unknown:
            raise InvalidParams(f"--param names algorithm(s) not evaluated: {', '.join(unknown)}")
        for name in dict.fromkeys([BASELINE, *names]):  # fail on bad input before reading data
            training.build_model(name, params.get(name))
        spec = SplitSpec(
            kind="time" if split == "time" else "random",
            cutoff=when,
            test_fraction=test_fraction,
            seed=seed,
        )
        config = training.dataset_config(settings)
        view = StageView()
        with view:
            frames = training.load_frames(settings, from_files, view)
            view("building the dataset")
            dataset = training.build_dataset(frames, config)
            del frames
            report = evaluate_dataset(
                dataset,
                names,
                params=params,
                split=spec,
                ks=ks,
                progress=lambda line: (
                    view(line) if line.startswith("fitting ") else view.note(line)
                ),
            )
    except DomainError as exc:
        fail(str(exc), exit_code_for(exc))
    except RecommenderError as exc:
        fail(f"evaluation failed: {exc}")
    except ValueError as exc:
        fail(str(exc), EXIT_INVALID_DATA)
    except SQLAlchemyError as exc:
        fail(f"database error (run `finrec db upgrade`?): {exc}")
    # A pipe gets rich's 80 columns, which truncates numbers to "0.…": print it wide instead.
    (console if console.is_terminal else Console(width=140)).print(_table(report))
    target = out or Path(settings.artifact_dir).parent / "reports" / datetime.now(UTC).strftime(
        "evaluate-%Y%m%dT%H%M%S"
    )
    try:
        paths = report.save(target)
    except OSError as exc:
        fail(f"cannot write the report to {target}: {exc}")
    with contextlib.suppress(KeyError):
        best = report.best()
        console.print(f"best nDCG@{report.primary_k}: {best.name}", soft_wrap=True)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
