"""``finrec generate``: write a synthetic bank in the import contract."""

from __future__ import annotations

import datetime as dt
import time
from enum import StrEnum
from pathlib import Path

import typer

from app.cli._common import EXIT_USAGE, console, fail


class FileFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


def _parse_date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def generate(
    customers: int = typer.Option(10_000, "--customers", min=1, help="Number of customers."),
    seed: int = typer.Option(
        42, "--seed", min=0, help="Random seed; equal arguments give equal files."
    ),
    out: Path = typer.Option(
        Path("data/synthetic"), "--out", help="Directory for the three files."
    ),
    fmt: FileFormat = typer.Option(FileFormat.csv, "--format", help="File format."),
    months: int = typer.Option(18, "--months", min=1, max=120, help="Months of events."),
    end_date: str | None = typer.Option(
        None,
        "--end-date",
        help="The log ends at midnight UTC starting this day (YYYY-MM-DD; default today).",
    ),
    events_per_customer: float = typer.Option(
        20.0, "--events-per-customer", min=0.5, max=500, help="Average events per customer."
    ),
) -> None:
    """Generate a synthetic bank: customers, products and interactions files."""
    # Imported here so other commands do not pay for numpy and pyarrow at start-up.
    from app.synth import BankStream, SynthConfig, write_stream
    from app.synth.config import default_end_date

    end = _parse_date(end_date)
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a directory", EXIT_USAGE)
    try:
        config = SynthConfig(
            n_customers=customers,
            seed=seed,
            months=months,
            events_per_customer=events_per_customer,
            end_date=end or default_end_date(),
        )
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    started = time.perf_counter()
    try:
        written = write_stream(BankStream(config), out, fmt.value)
    except OSError as exc:
        fail(f"cannot write to {out}: {exc}")
    seconds = time.perf_counter() - started
    window = f"{config.start_date} to {config.end_date} (exclusive)"
    console.print(f"synthetic bank, seed {seed}, events {window}:", highlight=False, soft_wrap=True)
    for item in written:
        console.print(
            f"  {item.path}  {item.rows:,} rows  {item.bytes / 1e6:,.1f} MB",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"done in {seconds:.1f} s", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the root command line."""
    app.command("generate")(generate)
