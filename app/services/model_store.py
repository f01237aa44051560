"""Active model artifacts held in memory, swapped atomically when a version is activated.

The store maps a strategy name to a :class:`LoadedModel`. Activation loads and verifies the new
artifact *before* touching the map, then replaces the whole dict under a lock; a request that
already holds the old object keeps using it. A corrupt or incompatible artifact raises
:class:`~app.services.errors.InvalidArtifact` and the previous version keeps serving.
:meth:`ModelStore.sync` re-reads ``strategy_activations`` so several replicas converge.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import ModelVersion, StrategyActivation
from app.services.errors import InvalidArtifact
from recommenders.base import VectorModel
from recommenders.errors import RecommenderError

log = logging.getLogger(__name__)

NO_BIAS = np.float32(-0.0)  # adds nothing to any float32, -0.0 included

Loader = Callable[[Path], Any]

# When the requested strategy is not loaded, serve the first of these that is.
PREFERENCE = ("fusion", "lightfm", "als", "ease", "bpr", "itemknn", "content", "popularity")
# Models that can score a customer unseen at fit time, best first.
COLD_PREFERENCE = ("fusion", "lightfm", "content", "popularity")


def default_loader(path: Path) -> Any:
    """Verify and load an artifact directory with the modelling library."""
    from recommenders.artifacts import load_artifact

    return load_artifact(path)


# The arrays that grow with the number of customers.
CUSTOMER_ARRAYS = ("customer_ids", "customer_factors", "customer_bias")


def mapped_loader(path: Path) -> Any:
    """:func:`default_loader` with the customer-side arrays memory-mapped: for a job that
    reads the customers a chunk at a time and releases the pages after each chunk
    (:meth:`LoadedModel.release_pages`)."""
    from recommenders.artifacts import load_artifact

    return load_artifact(path, mmap=CUSTOMER_ARRAYS)


@dataclass(eq=False)
class LoadedModel:
    """A verified model plus the lookups serving needs, built once at load time.

    Customer lookups: the API looks customers up one at a time, so serving builds a dict at
    load time (~100 ns a lookup, ~100 bytes a customer). A batch job looks a chunk of IDs up
    at once (:meth:`customer_positions`: a binary search over the model's sorted ID array,
    no per-customer objects), so it loads without the dict (``index_customers=False``); a
    single lookup then binary-searches too.
    """

    strategy: str
    version: str
    algorithm: str
    model: Any
    customer_external: np.ndarray  # the model's customer IDs, in position order
    product_external: np.ndarray
    _customer_index: dict[str, int] | None = field(default=None, repr=False)
    # (order that sorts customer_external, or None when it is sorted already), built lazily.
    _customer_order: tuple[np.ndarray | None] | None = field(default=None, repr=False)
    _positions: tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = field(
        default=None, repr=False
    )
    _product_lookup: dict[str, int] | None = field(default=None, repr=False)
    # customer_id -> (catalogue version, profile object, catalogue-order scores), bounded LRU.
    cold_scores: OrderedDict[str, tuple[int, Any, np.ndarray]] = field(
        default_factory=OrderedDict, repr=False
    )
    cold_cache_size: int = 10_000
    _layout: tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray] | None] | None = field(
        default=None, repr=False
    )

    @classmethod
    def wrap(
        cls, strategy: str, version: str, model: Any, *, index_customers: bool = True
    ) -> LoadedModel:
        customer_ids = getattr(model, "customer_ids", None)
        product_ids = getattr(model, "product_ids", None)
        if customer_ids is None or product_ids is None:
            raise InvalidArtifact(f"model version {version!r} has no ID maps (not fitted)")
        loaded = cls(
            strategy=strategy,
            version=version,
            algorithm=str(getattr(model, "algorithm", strategy)),
            model=model,
            customer_external=customer_ids.external,
            product_external=np.asarray(product_ids.external).astype(object),
        )
        if index_customers:
            loaded._customer_index = loaded._build_index()
        return loaded

    @property
    def cold_inputs(self) -> frozenset[str]:
        return frozenset(getattr(self.model, "cold_inputs", frozenset()))

    @property
    def customer_index(self) -> dict[str, int]:
        """Customer ID -> model position (built on first use when not built at load time)."""
        index = self._customer_index
        if index is None:
            index = self._customer_index = self._build_index()
        return index

    def _build_index(self) -> dict[str, int]:
        # A dict costs memory (~100 bytes a customer) but answers in ~100 ns per request.
        return {c: i for i, c in enumerate(np.asarray(self.customer_external).tolist())}

    def customer_position(self, customer_id: str) -> int:
        """The model's index for ``customer_id``, or -1 when the model never saw them."""
        index = self._customer_index
        if index is not None:
            return index.get(customer_id, -1)
        return int(self.customer_positions([customer_id])[0])

    def customer_positions(self, customer_ids: list[str] | np.ndarray) -> np.ndarray:
        """:meth:`customer_position` of many IDs at once (int64, -1 for unknown customers).

        With the dict built, one lookup each; without it, a binary search of the model's
        sorted IDs for the whole array, then an exact comparison of what was found.
        """
        ids: list[str] = (
            customer_ids.tolist() if isinstance(customer_ids, np.ndarray) else list(customer_ids)
        )
        n = len(ids)
        index = self._customer_index
        if index is not None:
            return np.fromiter((index.get(c, -1) for c in ids), dtype=np.int64, count=n)
        external = self.customer_external
        if n == 0 or external.shape[0] == 0:
            return np.full(n, -1, dtype=np.int64)
        order = self._sorted_order()
        # Only the model's IDs between the smallest and the largest asked for are copied out
        # (about a chunk's worth): two bisections of the mapped array find them. Searching the
        # mapped array itself would copy all of it when it is not aligned in the file.
        # The pages of a memory-mapped array that the bisections and then the copy read are
        # dropped after each, so a lookup holds about a window's worth of them at a time.
        from recommenders.artifacts import release_pages

        lowest, highest = min(ids), max(ids)
        if order is None:
            lo = bisect.bisect_left(external, lowest)
            hi = bisect.bisect_right(external, highest, lo)
            release_pages(external)
            window = np.array(external[lo:hi])
            where = np.arange(lo, hi, dtype=np.int64)
        else:
            lo = bisect.bisect_left(order, lowest, key=external.__getitem__)
            hi = bisect.bisect_right(order, highest, lo, key=external.__getitem__)
            release_pages(external)
            where = np.asarray(order[lo:hi], dtype=np.int64)
            window = external[where]
        release_pages(external)
        if window.shape[0] == 0:
            return np.full(n, -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(window, np.asarray(ids, dtype=str)), window.shape[0] - 1)
        found = window[at].tolist()
        hit = np.fromiter((a == b for a, b in zip(found, ids, strict=True)), dtype=bool, count=n)
        return np.where(hit, where[at], -1).astype(np.int64)

    def _sorted_order(self) -> np.ndarray | None:
        cached = self._customer_order
        if cached is None:
            from recommenders.artifacts import sorted_order

            cached = self._customer_order = (sorted_order(self.customer_external),)
        return cached[0]

    def release_pages(self) -> None:
        """Drop the resident pages of the memory-mapped customer arrays (see
        :func:`mapped_loader`); a no-op for arrays held in memory."""
        from recommenders.artifacts import release_pages

        release_pages(self.customer_external)
        for name in ("customer_factors", "customer_bias"):
            release_pages(getattr(self.model, name, None))

    def product_index_of(self, product_ids: Iterable[str]) -> np.ndarray:
        """The model's indices for the given product IDs (IDs it does not know are skipped)."""
        lookup = self._product_lookup
        if lookup is None:
            lookup = {p: i for i, p in enumerate(self.product_external.tolist())}
            self._product_lookup = lookup
        return np.asarray([lookup[p] for p in product_ids if p in lookup], dtype=np.int64)

    def score_catalog(
        self, position: int, version: int, index: Mapping[str, int], size: int
    ) -> np.ndarray:
        """One known customer's scores in catalogue order (-inf where the model lacks a product).

        Factor models take a fast path: their product factors are laid out in catalogue order
        once per snapshot, so a request is a single matrix-vector product.
        """
        parts = self.score_parts(position, version, index, size)
        if parts is not None:
            scores, offset, bias = parts
            scores += offset  # the product bias, and -inf where the model lacks a product
            scores += bias
            return scores
        _, model_idx, catalog_idx = self.catalog_view(version, index)
        row = self.model.score(np.asarray([position]))[0]
        scores = np.full(size, -np.inf, dtype=np.float32)
        scores[catalog_idx] = row[model_idx]
        return scores

    def score_parts(
        self, position: int, version: int, index: Mapping[str, int], size: int
    ) -> tuple[np.ndarray, np.ndarray, np.float32] | None:
        """A factor model's scores of one known customer in catalogue order, before the biases:
        ``(raw, offset, bias)``, the scores being ``(raw + offset) + bias`` in float32 (what
        :meth:`score_catalog` returns; ``None`` for other models). ``offset`` is the product
        bias and -inf where the model lacks a product, ``bias`` the customer's (``-0.0``: none).
        """
        layout = self._factor_layout(version, index, size)
        if layout is None:
            return None
        factors, offset, _ = layout
        model = self.model
        raw = np.asarray(factors @ model.customer_factors[position], dtype=np.float32)
        customer_bias = model.customer_bias
        bias = NO_BIAS if customer_bias is None else np.float32(customer_bias[position])
        return raw, offset, bias

    def _factor_layout(
        self, version: int, index: Mapping[str, int], size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        cached = self._layout  # checked first: an ABC's isinstance is slow on the hot path
        if cached is not None and cached[0] == version:
            return cached[1]
        if not isinstance(self.model, VectorModel):
            self._layout = (version, None)
            return None
        _, model_idx, catalog_idx = self.catalog_view(version, index)
        source = self.model.product_factors
        factors = np.zeros((size, source.shape[1]), dtype=np.float32)
        factors[catalog_idx] = source[model_idx]
        unknown = np.ones(size, dtype=bool)
        unknown[catalog_idx] = False
        # One addition per request gives both the product bias and the -inf of unknown products;
        # without a bias, -0.0 leaves every score exactly as it is (x + -0.0 == x, -0.0 too).
        offset = np.full(size, -0.0, dtype=np.float32)
        if self.model.product_bias is not None:
            offset[catalog_idx] = self.model.product_bias[model_idx]
        offset[unknown] = -np.inf
        offset.flags.writeable = False
        layout = (factors, offset, unknown)
        self._layout = (version, layout)
        return layout

    def remember_cold(self, customer_id: str, entry: tuple[int, Any, np.ndarray]) -> None:
        """Keep a cold customer's scores (dict operations are atomic under the GIL)."""
        cache = self.cold_scores
        cache[customer_id] = entry
        while len(cache) > self.cold_cache_size:
            try:
                cache.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def catalog_positions(self, version: int, index: Mapping[str, int]) -> np.ndarray:
        """Catalogue position of each model product (-1 when the catalogue lacks it)."""
        return self.catalog_view(version, index)[0]

    def catalog_view(
        self, version: int, index: Mapping[str, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(positions, model_idx, catalog_idx)``: the full map and its known pairs.

        Cached per catalogue snapshot version; a race merely recomputes the same arrays.
        """
        cached = self._positions
        if cached is not None and cached[0] == version:
            return cached[1]
        positions = np.fromiter(
            (index.get(p, -1) for p in self.product_external.tolist()), dtype=np.int64
        )
        model_idx = np.flatnonzero(positions >= 0)
        view = (positions, model_idx, positions[model_idx])
        self._positions = (version, view)
        return view


class ModelStore:
    """Strategy -> loaded model, replaced atomically; safe to read from any thread."""

    def __init__(
        self,
        loader: Loader = default_loader,
        artifact_root: Path | None = None,
        *,
        index_customers: bool = True,
    ) -> None:
        """``index_customers=False`` (batch jobs) skips the per-customer dict that serving
        builds at load time (see :class:`LoadedModel`)."""
        self._loader = loader
        self._artifact_root = artifact_root
        self._index_customers = index_customers
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    # ---- reads (hot path: a dict lookup on an immutable snapshot) --------------------------
    def get(self, strategy: str) -> LoadedModel | None:
        return self._models.get(strategy)

    @property
    def strategies(self) -> dict[str, str]:
        """``{strategy: version}`` of what is loaded now."""
        return {name: m.version for name, m in self._models.items()}

    def choose(self, requested: str | None, default: str) -> LoadedModel | None:
        """The requested strategy if loaded, else the default, else the best loaded one."""
        models = self._models
        for name in (requested, default, *PREFERENCE):
            if name is not None and name in models:
                return models[name]
        return next(iter(models.values()), None)

    def cold_candidates(self) -> list[LoadedModel]:
        """Loaded models that can score customers unseen at fit time, best first."""
        models = self._models
        found = [models[n] for n in COLD_PREFERENCE if n in models and models[n].cold_inputs]
        found += [m for n, m in models.items() if n not in COLD_PREFERENCE and m.cold_inputs]
        return found

    # ---- writes ----------------------------------------------------------------------------
    def resolve(self, artifact_path: str | Path) -> Path:
        path = Path(artifact_path)
        if not path.is_absolute() and not path.exists() and self._artifact_root is not None:
            candidate = self._artifact_root / path
            if candidate.exists():
                return candidate
        return path

    def load(self, strategy: str, version: str, artifact_path: str | Path) -> LoadedModel:
        """Load and verify an artifact without serving it yet."""
        path = self.resolve(artifact_path)
        try:
            model = self._loader(path)
        except (RecommenderError, OSError, ValueError) as exc:
            # Name the artifact, not where this server keeps it: the message reaches API clients.
            reason = str(exc).replace(str(path), path.name)
            raise InvalidArtifact(
                f"model version {version!r} ({path.name}) cannot be served: {reason}"
            ) from exc
        return LoadedModel.wrap(strategy, version, model, index_customers=self._index_customers)

    def install(self, loaded: LoadedModel) -> None:
        """Serve ``loaded`` for its strategy from the next request on (atomic swap)."""
        with self._lock:
            models = dict(self._models)
            models[loaded.strategy] = loaded
            self._models = models

    def activate(self, strategy: str, version: str, artifact_path: str | Path) -> LoadedModel:
        """Load, verify, then swap. On failure nothing changes and InvalidArtifact is raised."""
        current = self._models.get(strategy)
        if current is not None and current.version == version:
            return current
        loaded = self.load(strategy, version, artifact_path)
        self.install(loaded)
        log.info("model activated", extra={"strategy": strategy, "version": version})
        return loaded

    def remove(self, strategy: str) -> None:
        with self._lock:
            models = dict(self._models)
            models.pop(strategy, None)
            self._models = models

    def sync(self, session_factory: sessionmaker[Session]) -> dict[str, str]:
        """Load whatever ``strategy_activations`` says serves now; returns ``{strategy: error}``.

        A version that fails to load is reported and skipped; the previous one keeps serving.
        """
        with session_factory() as session:
            rows = session.execute(
                select(
                    StrategyActivation.strategy, ModelVersion.version, ModelVersion.artifact_path
                ).join(ModelVersion, ModelVersion.version == StrategyActivation.version)
            ).all()
        errors: dict[str, str] = {}
        wanted = {strategy for strategy, _, _ in rows}
        for strategy, version, path in rows:
            try:
                self.activate(strategy, version, path)
            except InvalidArtifact as exc:
                errors[strategy] = str(exc)
                log.warning(
                    "model for strategy %s not loaded: %s",
                    strategy,
                    exc,
                    extra={"strategy": strategy, "error": str(exc)},
                )
        for strategy in set(self._models) - wanted:
            self.remove(strategy)
        return errors
