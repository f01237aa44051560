"""Domain errors raised by services; the API maps them to problem+json, the CLI to exit codes.

Each class carries the HTTP status and the stable problem ``slug`` it should be answered with, so
the edge never has to guess. Messages are written for the person who will read them.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base class for every error a service raises on purpose."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class NotFoundError(DomainError):
    """The named thing does not exist."""

    status = 404
    slug = "not-found"


class ConflictError(DomainError):
    """The request clashes with the current state."""

    status = 409
    slug = "conflict"


class UnavailableError(DomainError):
    """Nothing can serve the request right now (e.g. no model loaded for a strategy)."""

    status = 503
    slug = "unavailable"


class VersionNotFound(NotFoundError):
    """No model version is registered under that id."""

    slug = "model-version-not-found"


class StrategyNotFound(NotFoundError):
    """No version is active for that strategy."""

    slug = "strategy-not-found"


class CustomerNotFound(NotFoundError):
    """No customer with that external id."""

    slug = "customer-not-found"


class ProductNotFound(NotFoundError):
    """No product with that external id."""

    slug = "product-not-found"


class VersionExists(ConflictError):
    """A version with that id is already registered."""

    slug = "model-version-exists"


class VersionNotServable(ConflictError):
    """The version failed or was retired and cannot be activated."""

    slug = "model-version-not-servable"


class StrategyPinned(ConflictError):
    """The strategy is pinned: automatic activations leave it alone until it is unpinned."""

    slug = "strategy-pinned"


class NothingToRollBack(ConflictError):
    """The strategy has no previous version recorded."""

    slug = "nothing-to-roll-back"


class InvalidArtifact(DomainError):
    """An artifact directory is missing, unreadable or not a finrec artifact."""

    status = 422
    slug = "invalid-artifact"


class TrainingDataError(DomainError):
    """The training data cannot produce a model (empty, malformed, missing columns)."""

    status = 422
    slug = "invalid-training-data"


class InvalidParams(DomainError):
    """Model parameters were rejected by the model's strict configuration."""

    status = 422
    slug = "invalid-model-params"


class ModelUnavailable(UnavailableError):
    """No loaded model can serve the strategy."""

    slug = "model-unavailable"
