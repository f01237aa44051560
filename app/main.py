"""Application factory: the lifespan owns the engine and loaded artifacts; routers stay thin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import health
from app.api.errors import install_problem_handlers
from app.db.session import make_engine, make_session_factory
from app.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; nothing is created at import time."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.readiness = lambda: (True, {})
        try:
            yield
        finally:
            engine.dispose()

    docs = settings.docs_enabled
    app = FastAPI(
        title="finrec",
        version="0.1.0",
        summary="Suitable, explained financial-product recommendations for retail banks.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    return app
