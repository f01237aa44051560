"""Application factory: the lifespan owns the engine and loaded artifacts; routers stay thin."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import CapacityLimiter
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from app.api import (
    campaigns,
    customers,
    decisions,
    events,
    experiments,
    health,
    models,
    products,
    recommendations,
    similar,
)
from app.api.auth import Authenticator, require_scope
from app.api.errors import install_problem_handlers
from app.api.fastlane import FastLane, FinrecAPI
from app.api.limits import BodySizeLimit
from app.db.session import make_engine, make_session_factory
from app.observability import Metrics, Observability, configure_logging
from app.observability.middleware import RequestObserver
from app.observability.routes import metrics_router
from app.services.batches import BatchReader
from app.services.experiments.assignment import ExperimentBook
from app.services.exposure_process import exposure_writer
from app.services.heap import CollectorSchedule
from app.services.model_store import ModelStore
from app.services.profiles import ProfileCache
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.flow import ServingState
from app.services.recommend.kernel import warm_up
from app.services.recommend.promotions import PromotionBook
from app.services.recommend.service import RecommendationService
from app.settings import Settings

log = logging.getLogger(__name__)


async def _refresh_loop(app: FastAPI, settings: Settings) -> None:
    """Keep catalogue, campaigns and loaded models in step with the database (replicas converge)."""
    loop = asyncio.get_running_loop()
    next_catalog = next_models = loop.time()
    while True:
        await asyncio.sleep(min(settings.catalog_refresh_seconds, settings.model_refresh_seconds))
        now = loop.time()
        try:
            if now >= next_catalog + settings.catalog_refresh_seconds:
                next_catalog = now
                await asyncio.to_thread(app.state.catalog.refresh)
                await asyncio.to_thread(app.state.promotions.refresh)
                await asyncio.to_thread(app.state.experiments.refresh)
            if now >= next_models + settings.model_refresh_seconds:
                next_models = now
                await asyncio.to_thread(app.state.model_store.sync, app.state.session_factory)
        except Exception:  # a refresh failure must never stop serving
            log.exception("background refresh failed")


# finrec exports its own Prometheus metrics and structured logs (app/observability). FastAPI's
# native OpenTelemetry bridge (FastAPI 0.16x) asks the global providers whether it is configured
# on every request, ~9 µs of the hot path; finrec never configures OpenTelemetry, so it is off
# (versions without the option take no argument).
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def create_app(settings: Settings | None = None) -> FinrecAPI:
    """Build the FastAPI app; nothing is created at import time."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            network_timeout=settings.database_timeout_seconds,
        )
        session_factory = make_session_factory(engine)
        app.state.settings = settings
        app.state.engine = engine
        app.state.session_factory = session_factory

        profiles = ProfileCache(
            session_factory,
            validity_months=settings.risk_assessment_validity_months,
            max_size=settings.profile_cache_size,
            ttl_seconds=settings.profile_cache_ttl_seconds,
        )
        catalog = CatalogHolder(session_factory)
        promotions = PromotionBook(session_factory)
        store = ModelStore(artifact_root=settings.artifact_dir)
        exposures = exposure_writer(settings, session_factory)  # FINREC_EXPOSURE_WRITER
        # Start-up never fails on the database: serving begins with whatever could be loaded
        # and the background refresh fills the rest in when the database comes back.
        await asyncio.to_thread(catalog.refresh)
        await asyncio.to_thread(promotions.refresh)
        experiment_book = ExperimentBook(session_factory)
        await asyncio.to_thread(experiment_book.refresh)
        try:
            errors = await asyncio.to_thread(store.sync, session_factory)
            for strategy, error in errors.items():
                log.warning("strategy %s not loaded: %s", strategy, error)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("active models could not be read at start-up: %s", exc)

        # Complete precompute batches are served through this hook (tests may set their own).
        if getattr(app.state, "precomputed", None) is None:
            app.state.precomputed = BatchReader(session_factory)
        service = RecommendationService(
            settings, catalog, store, promotions, getattr(app.state, "precomputed", None)
        )
        if settings.compiled_lists:
            await asyncio.to_thread(warm_up)  # before the first request, not during it
        app.state.profiles = profiles
        app.state.catalog = catalog
        app.state.promotions = promotions
        app.state.model_store = store
        app.state.exposures = exposures
        app.state.recommendations = service
        app.state.experiments = experiment_book
        app.state.serving = ServingState(
            service,
            profiles,
            exposures,
            experiment_book,
            profile_reads=CapacityLimiter(settings.profile_reads_at_once),
            profile_wait=settings.profile_read_wait_seconds,
        )
        app.state.readiness = service.ready

        # What start-up loaded (libraries, catalogue, models) lives as long as the process: keep
        # it out of the collector's full scans, which otherwise pause serving for a tenth of a
        # second or more each.
        gc.freeze()
        exposures.start()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(_refresh_loop(app, settings))]
        if settings.gc_step_seconds > 0:
            # Later survivors (mostly per-customer caches) are frozen step by step, so full
            # collections stay short however many customers are cached.
            collector = CollectorSchedule(settings.gc_step_seconds, settings.gc_full_seconds)
            app.state.collector = collector
            tasks.append(loop.create_task(collector.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await exposures.stop()
            engine.dispose()

    docs = settings.docs_enabled
    app = FinrecAPI(
        title="finrec",
        version="0.1.0",
        summary="Suitable, explained financial-product recommendations for retail banks.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        **_NO_NATIVE_TELEMETRY,
    )
    install_problem_handlers(app)
    app.state.auth = Authenticator(settings)  # API keys: caches and per-key rate limit

    # ---- middleware (body size limit etc.) goes here ---------------------------------------
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    # Outermost, so refused and failed requests are timed and logged too.
    app.state.metrics = metrics = Metrics()
    metrics.watch(app.state)
    observer = RequestObserver(metrics, access_log_enabled=settings.access_log)
    app.add_middleware(Observability, observer=observer)
    if settings.fast_lane:  # asked before the stack; observes its requests the same way
        app.fast_lane = FastLane(observer)

    # ---- routers ---------------------------------------------------------------------------
    app.include_router(health.router)
    app.include_router(recommendations.router)
    app.include_router(similar.router)
    app.include_router(customers.router)
    app.include_router(decisions.router)
    app.include_router(products.router)
    app.include_router(events.router)
    app.include_router(models.router)
    app.include_router(experiments.router)
    app.include_router(campaigns.router)
    app.include_router(metrics_router([] if settings.metrics_public else [require_scope("admin")]))
    return app
