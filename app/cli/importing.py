"""``finrec import``: load customers, products or interactions from CSV or Parquet files."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from app.cli._common import EXIT_INVALID_DATA, console, err_console, fail, load_settings
from app.db.session import make_engine
from app.jobs.importer import (
    ImportKind,
    ImportOptions,
    InvalidRowsError,
    SourceError,
    run_import,
)
from app.jobs.importer.readers import PARQUET_SUFFIXES

import_app = typer.Typer(
    help="Validate and load bank data (see docs/import.md for the column contract).",
    no_args_is_help=True,
)

FILE_ARG = typer.Argument(
    ...,
    help="CSV (UTF-8, header row) or Parquet file.",
    show_default=False,
    exists=True,
    dir_okay=False,
    readable=True,
)
SKIP_OPT = typer.Option(
    False, "--skip-invalid", help="Load the valid rows; write the rejected ones to a rejects file."
)
REJECTS_OPT = typer.Option(
    None,
    "--rejects",
    help="Where to write rejected rows with their reasons "
    "(default with --skip-invalid: FILE.rejects.csv beside the input).",
)


@contextmanager
def _progress(total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr, only when a person is watching a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = [TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("rows", total=total)
        yield lambda rows: bar.update(task, completed=rows)


def _total_rows(path: Path) -> int | None:
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        return None
    try:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # the importer reports unreadable files properly
        return None


def _run(kind: ImportKind, path: Path, skip_invalid: bool, rejects: Path | None) -> None:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with _progress(_total_rows(path)) as progress:
            options = ImportOptions(
                skip_invalid=skip_invalid, rejects_path=rejects, progress=progress
            )
            result = run_import(engine, settings, kind, path, options)
    except InvalidRowsError as exc:
        refused = exc.result
        for reject in sorted(refused.first_rejects, key=lambda r: r.row):
            err_console.print(
                f"  row {reject.row}: {reject.reason}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        more = refused.rows_rejected - len(refused.first_rejects)
        if more > 0:
            err_console.print(f"  ... and {more:,} more", highlight=False)
        if refused.rejects_path is not None:
            err_console.print(
                f"  all rejected rows: {refused.rejects_path}", highlight=False, markup=False
            )
        fail(
            f"{path.name}: {exc} (rows are numbered from 1 = first data row after the header; "
            "use --skip-invalid to load the valid rows)",
            EXIT_INVALID_DATA,
        )
    except SourceError as exc:
        fail(f"{path.name}: refused, nothing was imported: {exc}", EXIT_INVALID_DATA)
    except SQLAlchemyError as exc:
        fail(
            f"database error, nothing was imported (is the schema migrated? "
            f"run `finrec db upgrade`): {exc.__class__.__name__}: {exc}"
        )
    finally:
        engine.dispose()
    if result.rejects_path is not None:
        err_console.print(
            f"{result.rows_rejected:,} rejected rows written to {result.rejects_path}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    console.print(result.summary(), highlight=False, markup=False, soft_wrap=True)


@import_app.command("customers")
def customers(
    file: Path = FILE_ARG, skip_invalid: bool = SKIP_OPT, rejects: Path | None = REJECTS_OPT
) -> None:
    """Upsert customers (key: customer_id)."""
    _run(ImportKind.CUSTOMERS, file, skip_invalid, rejects)


@import_app.command("products")
def products(
    file: Path = FILE_ARG, skip_invalid: bool = SKIP_OPT, rejects: Path | None = REJECTS_OPT
) -> None:
    """Upsert products (key: product_id)."""
    _run(ImportKind.PRODUCTS, file, skip_invalid, rejects)


@import_app.command("interactions")
def interactions(
    file: Path = FILE_ARG, skip_invalid: bool = SKIP_OPT, rejects: Path | None = REJECTS_OPT
) -> None:
    """Append interaction events (idempotent on event_id) and derive holdings."""
    _run(ImportKind.INTERACTIONS, file, skip_invalid, rejects)


def register(app: typer.Typer) -> None:
    """Add the ``import`` command group to the root CLI."""
    app.add_typer(import_app, name="import")
