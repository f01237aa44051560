"""Experiment errors; each maps to a problem+json slug and a CLI exit code."""

from __future__ import annotations

from app.services.errors import ConflictError, DomainError, NotFoundError


class ExperimentNotFound(NotFoundError):
    """No experiment with that key."""

    slug = "experiment-not-found"


class InvalidExperiment(DomainError):
    """The definition breaks a rule (weights, one control, at most one holdout, names)."""

    status = 422
    slug = "invalid-experiment"


class ExperimentConflict(ConflictError):
    """The change clashes with the experiment's state or with another running experiment."""

    slug = "experiment-conflict"
