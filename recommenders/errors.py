"""Errors raised by the modelling library; callers translate them at the edge (API, CLI)."""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class for every error the modelling library raises on purpose."""


class DatasetError(RecommenderError, ValueError):
    """Input frames do not follow the import contract (missing column, bad value)."""


class NotFittedError(RecommenderError, RuntimeError):
    """A model was asked to score, recommend or save before ``fit`` (or ``load``)."""


class ColdStartUnsupported(RecommenderError):
    """The model cannot score customers it did not see at fit time (or these particular ones).

    Callers route such customers to a model that can (popularity, content, LightFM).
    """


class ArtifactError(RecommenderError):
    """An artifact directory is missing, corrupt, tampered with or incompatible."""


class UnknownAlgorithmError(RecommenderError, KeyError):
    """No recommender is registered under the requested algorithm name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
