"""Request dependencies as ``Annotated`` aliases, so route signatures read like prose.

Everything comes from ``app.state``, filled by the lifespan in :mod:`app.main`; nothing is a
module-level global.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.services.exposures import ExposureLog
from app.services.model_store import ModelStore
from app.services.profiles import ProfileCache
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.service import RecommendationService
from app.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, closed afterwards (the service decides when to commit)."""
    with request.app.state.session_factory() as session:
        yield session


def get_model_store(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.model_store
    return store


def get_profiles(request: Request) -> ProfileCache:
    profiles: ProfileCache = request.app.state.profiles
    return profiles


def get_catalog(request: Request) -> CatalogHolder:
    catalog: CatalogHolder = request.app.state.catalog
    return catalog


def get_exposures(request: Request) -> ExposureLog:
    exposures: ExposureLog = request.app.state.exposures
    return exposures


def get_recommendations(request: Request) -> RecommendationService:
    service: RecommendationService = request.app.state.recommendations
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ModelStoreDep = Annotated[ModelStore, Depends(get_model_store)]
ProfilesDep = Annotated[ProfileCache, Depends(get_profiles)]
CatalogDep = Annotated[CatalogHolder, Depends(get_catalog)]
ExposuresDep = Annotated[ExposureLog, Depends(get_exposures)]
RecommendationsDep = Annotated[RecommendationService, Depends(get_recommendations)]
