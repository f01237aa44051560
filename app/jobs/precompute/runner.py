"""One precompute run (or one shard of it): plan, resume, score chunk by chunk, publish, prune.

A batch is identified by everything that decides its rows: strategy, model version, ``k``, chunk
size, shard count, the as-of time and the data fingerprint. Running the same command again after
a crash therefore finds the same batch and scores only the chunks that are not in yet. Chunk
``c`` covers customers ``[c * chunk_size, (c + 1) * chunk_size)`` in customer-ID order and
belongs to shard ``c mod n``, so shards are disjoint and cover everyone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.db.models import ModelVersion
from app.db.session import make_session_factory
from app.jobs.precompute import store
from app.jobs.precompute.export import export_batch
from app.jobs.precompute.population import DataChanged, PopulationReader
from app.jobs.precompute.scoring import ChunkScorer
from app.services import registry
from app.services.errors import DomainError
from app.services.model_store import PREFERENCE, LoadedModel, ModelStore, mapped_loader
from app.services.profiles import Profile, read_profile
from app.services.recommend.catalog import CatalogSnapshot, load_catalog
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.promotions import PromotionBook
from app.services.recommend.service import RecommendationService
from app.settings import Settings


class PrecomputeError(Exception):
    """A run that cannot start or go on; ``kind`` picks the exit code."""

    def __init__(self, message: str, kind: str = "failure") -> None:
        super().__init__(message)
        self.kind = kind  # failure | usage | invalid_data | config


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/n"`` with ``0 <= i < n``."""
        try:
            left, right = text.split("/")
            shard = cls(int(left), int(right))
        except ValueError:
            raise PrecomputeError(f"--shard must look like i/n, not {text!r}", "usage") from None
        if shard.count < 1 or not 0 <= shard.index < shard.count:
            raise PrecomputeError(f"--shard {text}: need 0 <= i < n", "usage")
        return shard

    def owns(self, chunk_index: int) -> bool:
        return chunk_index % self.count == self.index


@dataclass(frozen=True)
class PrecomputeOptions:
    strategy: str | None = None
    model: str | None = None
    k: int = 20
    shard: Shard = Shard()
    chunk_size: int = 10_000
    export: Path | None = None
    as_of: datetime | None = None  # default: midnight UTC today, so a same-day rerun resumes
    keep: int = 3
    stale_after: timedelta = timedelta(days=2)
    throttle_seconds: float = 0.0


@dataclass(frozen=True)
class ChunkDone:
    """Progress after each chunk (for bars and log lines)."""

    batch_id: str
    chunk_index: int
    chunks_done: int  # of this shard, including chunks found already done
    chunks_total: int  # of this shard
    customers: int
    seconds: float


@dataclass
class PrecomputeResult:
    batch_id: str
    strategy: str
    model_version: str
    shard: Shard
    complete: bool
    customers_total: int
    chunks_total: int
    chunks_written: int
    chunks_resumed: int
    outcomes: dict[str, int] = field(default_factory=dict)
    customers_scored: int = 0
    rows: int = 0
    seconds: float = 0.0
    exported: int | None = None
    pruned: list[str] = field(default_factory=list)


def default_as_of(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def batch_identity(
    strategy: str, version: str, options: PrecomputeOptions, as_of: datetime, fingerprint: str
) -> str:
    spec = {
        "strategy": strategy,
        "model_version": version,
        "k": options.k,
        "chunk_size": options.chunk_size,
        "shards": options.shard.count,
        "as_of": as_of.isoformat(),
        "data": fingerprint,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def _choose_model(
    session: Session, settings: Settings, options: PrecomputeOptions
) -> tuple[str, ModelVersion]:
    active = registry.active_versions(session)
    try:
        if options.model is not None:
            row = registry.get_version(session, options.model)
            named = [s for s, v in active.items() if v == row.version]
            strategy = options.strategy or (named[0] if named else row.algorithm)
            return strategy, row
        if options.strategy is not None:
            if options.strategy not in active:
                raise PrecomputeError(
                    f"no active model for strategy {options.strategy!r}; active: "
                    f"{', '.join(sorted(active)) or 'none'}",
                    "config",
                )
            return options.strategy, registry.get_version(session, active[options.strategy])
    except DomainError as exc:
        raise PrecomputeError(str(exc), "config") from exc
    for name in (settings.default_strategy, *PREFERENCE, *sorted(active)):
        if name in active:
            return name, registry.get_version(session, active[name])
    raise PrecomputeError("no model is active: train and activate one first", "config")


def _serving_service(
    settings: Settings,
    engine: Engine,
    strategy: str,
    version: ModelVersion,
    catalog: CatalogSnapshot,
) -> tuple[RecommendationService, LoadedModel]:
    """The service exactly as the API builds it, holding the models the API would hold."""
    # The same models, loaded for a job that reads customers a chunk at a time: the customer
    # side of each artifact memory-mapped (only a chunk's rows are read, and released after
    # the chunk), and no per-customer lookup dict (chunks are looked up as arrays).
    models = ModelStore(mapped_loader, artifact_root=settings.artifact_dir, index_customers=False)
    try:
        models.sync(make_session_factory(engine))
        loaded = models.activate(strategy, version.version, version.artifact_path)
    except DomainError as exc:
        raise PrecomputeError(str(exc), "config") from exc
    service = RecommendationService(
        settings, CatalogHolder(None, catalog), models, PromotionBook(None)
    )
    return service, loaded


def run_precompute(
    engine: Engine,
    settings: Settings,
    options: PrecomputeOptions,
    on_chunk: Callable[[ChunkDone], None] | None = None,
    on_plan: Callable[[str, int, int], None] | None = None,
) -> PrecomputeResult:
    """Score this shard's missing chunks, publish the batch when every chunk is in, export."""
    if options.k < 1 or options.chunk_size < 1:
        raise PrecomputeError("--k and --chunk-size must be positive", "usage")
    if options.export is not None and options.export.suffix.lower() not in (".csv", ".parquet"):
        raise PrecomputeError("--export must name a .csv or .parquet file", "usage")
    started = time.perf_counter()
    as_of = options.as_of or default_as_of()
    factory = make_session_factory(engine)
    with factory() as session:
        strategy, version = _choose_model(session, settings, options)
        catalog = load_catalog(session)
        reader = PopulationReader(
            session, catalog, as_of, settings.risk_assessment_validity_months, options.chunk_size
        )
        plan = reader.plan(session)
    if plan.size == 0:
        raise PrecomputeError(
            "there are no customers to score: import customers first", "invalid_data"
        )
    service, loaded = _serving_service(settings, engine, strategy, version, catalog)
    fingerprint = plan.fingerprint
    batch_id = batch_identity(strategy, version.version, options, as_of, fingerprint)
    chunks_total = plan.chunks
    batch = store.ensure_batch(
        engine,
        {
            "batch_id": batch_id,
            "strategy": strategy,
            "model_version": version.version,
            "k": options.k,
            "chunk_size": options.chunk_size,
            "shard_count": options.shard.count,
            "as_of": as_of,
            "data_fingerprint": fingerprint,
            "customers_total": plan.size,
            "chunks_total": chunks_total,
        },
    )
    mine = [c for c in range(chunks_total) if options.shard.owns(c)]
    done = store.done_chunks(engine, batch_id) if batch.status != "complete" else set(mine)
    todo = [c for c in mine if c not in done]
    if on_plan is not None:
        on_plan(batch_id, len(mine), len(mine) - len(todo))

    def full_profile(customer_id: str) -> Profile:
        with factory() as session:
            return read_profile(session, customer_id, settings.risk_assessment_validity_months)

    scorer = ChunkScorer(service, loaded, catalog, options.k, as_of, full_profile)
    written = 0
    for n, chunk in enumerate(todo, start=1):
        tick = time.perf_counter()
        start, stop = plan.bounds(chunk)
        with factory() as session:
            try:
                block = reader.chunk(session, plan, chunk)
            except DataChanged as exc:
                raise PrecomputeError(
                    f"{exc}: run the command again to score the data as it is now"
                ) from exc
        result = scorer.score(batch_id, block)
        del block
        seconds = time.perf_counter() - tick
        if store.write_chunk(
            engine,
            batch_id,
            chunk,
            options.shard.index,
            result.rows,
            stop - start,
            result.outcomes,
            seconds,
        ):
            written += 1
        # The written rows go now, not when the next chunk's result replaces them: otherwise
        # two chunks' rows would be alive at the next chunk's peak.
        del result
        if on_chunk is not None:
            on_chunk(
                ChunkDone(
                    batch_id, chunk, len(mine) - len(todo) + n, len(mine), stop - start, seconds
                )
            )
        if options.throttle_seconds > 0:
            time.sleep(options.throttle_seconds)

    complete = store.try_complete(engine, batch_id)
    pruned = store.prune(engine, strategy, options.keep, options.stale_after) if complete else []
    outcomes, customers, rows = store.chunk_outcomes(engine, batch_id)
    exported = None
    if options.export is not None and complete:
        exported = export_batch(engine, batch_id, options.export)
    return PrecomputeResult(
        batch_id=batch_id,
        strategy=strategy,
        model_version=version.version,
        shard=options.shard,
        complete=complete,
        customers_total=plan.size,
        chunks_total=chunks_total,
        chunks_written=written,
        chunks_resumed=len(mine) - len(todo),
        outcomes=outcomes,
        customers_scored=customers,
        rows=rows,
        seconds=time.perf_counter() - started,
        exported=exported,
        pruned=pruned,
    )
