"""``finrec precompute``: score every customer in chunks, publish the batch, export it.

Exit codes: 0 the batch (or this shard's part) is in; 1 failure (database, model); 2 bad
options; 3 nothing to score; 4 configuration (no active model, unknown strategy or version).
A shard that finishes before the others exits 0 and says the batch is waiting for them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy.exc import SQLAlchemyError

from app.cli._common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_INVALID_DATA,
    EXIT_USAGE,
    console,
    fail,
    load_settings,
)
from app.db.session import make_engine
from app.jobs.precompute import (
    ChunkDone,
    PrecomputeError,
    PrecomputeOptions,
    PrecomputeResult,
    Shard,
    run_precompute,
)

log = logging.getLogger("finrec.precompute")

EXIT_FOR_KIND = {
    "failure": EXIT_FAILURE,
    "usage": EXIT_USAGE,
    "invalid_data": EXIT_INVALID_DATA,
    "config": EXIT_CONFIG,
}


class Reporter:
    """A progress bar with ETA on a terminal; one JSON log line per chunk otherwise."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.started = time.perf_counter()
        self.customers = 0

    def plan(self, batch_id: str, chunks: int, resumed: int) -> None:
        _emit(self.interactive, "plan", batch_id=batch_id, chunks=chunks, resumed=resumed)
        if self.interactive:
            self.progress = Progress(
                TextColumn("scoring"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("chunks"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
            )
            self.progress.start()
            self.task = self.progress.add_task("scoring", total=chunks, completed=resumed)

    def chunk(self, done: ChunkDone) -> None:
        self.customers += done.customers
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=done.chunks_done)
            return
        elapsed = time.perf_counter() - self.started
        _emit(
            False,
            "chunk",
            batch_id=done.batch_id,
            chunk=done.chunk_index,
            done=done.chunks_done,
            of=done.chunks_total,
            customers_per_s=round(self.customers / elapsed, 1) if elapsed > 0 else None,
            seconds=round(done.seconds, 3),
        )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _emit(interactive: bool, event: str, **fields: object) -> None:
    if interactive:
        return
    line = {"ts": datetime.now(UTC).isoformat(timespec="seconds"), "event": event, **fields}
    print(json.dumps(line), file=sys.stderr, flush=True)


def _summary(result: PrecomputeResult, interactive: bool) -> None:
    skipped = {k: v for k, v in result.outcomes.items() if k == "no_eligible_product"}
    fields = {
        "batch_id": result.batch_id,
        "strategy": result.strategy,
        "model_version": result.model_version,
        "shard": f"{result.shard.index}/{result.shard.count}",
        "complete": result.complete,
        "customers": result.customers_total,
        "scored": result.customers_scored - sum(skipped.values()),
        "skipped": skipped,
        "outcomes": result.outcomes,
        "rows": result.rows,
        "chunks_written": result.chunks_written,
        "chunks_resumed": result.chunks_resumed,
        "seconds": round(result.seconds, 2),
        "exported": result.exported,
        "pruned": len(result.pruned),
    }
    if not interactive:
        _emit(False, "summary", **fields)
        return
    state = "complete and current" if result.complete else "waiting for other shards"
    console.print(f"[bold]batch {result.batch_id}[/] ({state})", highlight=False)
    console.print(
        f"  {result.strategy} {result.model_version} · shard {fields['shard']} · "
        f"{result.chunks_written} chunks written, {result.chunks_resumed} resumed · "
        f"{result.seconds:.1f}s",
        highlight=False,
    )
    console.print(
        f"  customers {result.customers_total:,} · scored {fields['scored']:,} · rows "
        f"{result.rows:,}",
        highlight=False,
    )
    for name, count in sorted(result.outcomes.items()):
        console.print(f"    {name:<20} {count:,}", highlight=False)
    if result.exported is not None:
        console.print(f"  exported {result.exported:,} rows", highlight=False)
    if result.pruned:
        console.print(f"  pruned {len(result.pruned)} old batches", highlight=False)


def precompute(
    strategy: Annotated[
        str | None, typer.Option(help="Strategy whose active model scores (default: served one).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="A registered model version instead.")] = None,
    k: Annotated[int, typer.Option(help="Items per customer.", min=1, max=200)] = 20,
    shard: Annotated[str, typer.Option(help="This run's slice, i/n (0-based).")] = "0/1",
    export: Annotated[
        Path | None, typer.Option(help="Write the complete batch to FILE.csv or FILE.parquet.")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(help="Customers per committed chunk (bounds memory).", min=1)
    ] = 10_000,
    as_of: Annotated[
        datetime | None,
        typer.Option(help="Moment risk assessments are judged at (default: today 00:00 UTC)."),
    ] = None,
    keep: Annotated[
        int,
        typer.Option(
            help="Complete batches kept per strategy.", min=1, envvar="FINREC_PRECOMPUTE_KEEP"
        ),
    ] = 3,
    throttle: Annotated[
        float, typer.Option(help="Seconds to pause after each chunk (spares a busy database).")
    ] = 0.0,
) -> None:
    """Score every customer with the serving policy, publish the batch, optionally export it."""
    settings = load_settings()
    interactive = console.is_terminal
    try:
        options = PrecomputeOptions(
            strategy=strategy,
            model=model,
            k=k,
            shard=Shard.parse(shard),
            chunk_size=chunk_size,
            export=export,
            as_of=as_of.replace(tzinfo=as_of.tzinfo or UTC) if as_of else None,
            keep=keep,
            throttle_seconds=max(throttle, 0.0),
        )
    except PrecomputeError as exc:
        fail(str(exc), EXIT_FOR_KIND[exc.kind])
    engine = make_engine(settings.database_url)
    reporter = Reporter(interactive)
    try:
        result = run_precompute(
            engine, settings, options, on_chunk=reporter.chunk, on_plan=reporter.plan
        )
    except PrecomputeError as exc:
        reporter.close()
        fail(str(exc), EXIT_FOR_KIND[exc.kind])
    except (SQLAlchemyError, OSError) as exc:
        reporter.close()
        fail(f"precompute stopped; rerun the same command to resume: {exc}", EXIT_FAILURE)
    finally:
        engine.dispose()
    reporter.close()
    _summary(result, interactive)


def register(app: typer.Typer) -> None:
    app.command("precompute")(precompute)
