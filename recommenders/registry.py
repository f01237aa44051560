"""``ALGORITHMS``: every recommender class by name, discovered from the package's modules.

A model module needs no registration step: any concrete :class:`~recommenders.base.Recommender`
subclass with a non-empty ``algorithm`` defined in a top-level module of ``recommenders`` is
found here, so the contract tests pick up new models automatically. Models defined elsewhere
(e.g. in a notebook) can be added with :func:`register`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import recommenders
from recommenders.base import Recommender
from recommenders.errors import UnknownAlgorithmError

# Filled below; defined first so model modules may import it while discovery runs.
ALGORITHMS: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    """Add ``cls`` under ``cls.algorithm``; refuses a name already taken by another class."""
    name = cls.algorithm
    if not name:
        raise ValueError(f"{cls.__name__} has no algorithm name")
    existing = ALGORITHMS.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"algorithm {name!r} is already registered by {existing.__name__}")
    ALGORITHMS[name] = cls
    return cls


def get_algorithm(name: str) -> type[Recommender]:
    """The class registered as ``name``; :class:`UnknownAlgorithmError` lists the choices."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise UnknownAlgorithmError(f"unknown algorithm {name!r}; choose one of: {known}") from None


def _subclasses(cls: type[Recommender]) -> list[type[Recommender]]:
    found: list[type[Recommender]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def _discover() -> None:
    for module in pkgutil.iter_modules(recommenders.__path__):
        if not module.ispkg and not module.name.startswith("_") and module.name != "registry":
            importlib.import_module(f"recommenders.{module.name}")
    for cls in _subclasses(Recommender):  # type: ignore[type-abstract]
        if (
            cls.algorithm
            and not inspect.isabstract(cls)
            and cls.__module__.startswith("recommenders.")
        ):
            register(cls)


_discover()
