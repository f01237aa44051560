"""The one recommender interface, batch-first, and the base for factor (vector) models.

A model sees integer indices only. ``score`` returns a dense float32 block (customers x
products); ``recommend`` masks and ranks it with the shared ranker in chunks, so scoring a
million customers never holds more than one chunk of scores in memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from recommenders.dataset import Dataset, IdMap
from recommenders.errors import ColdStartUnsupported, NotFittedError
from recommenders.features import FeatureEncoder
from recommenders.ranking import NEG_INF, apply_allowed, apply_exclusions, top_k

ColdInput = Literal["history", "features"]
Arrays = dict[str, np.ndarray]
DEFAULT_CHUNK = 4096


class ModelParams(BaseModel):
    """Base for model hyper-parameters: strict, JSON round-trippable."""

    model_config = ConfigDict(extra="forbid")


class FitContext(BaseModel):
    """What a fitted model remembers about its training data (saved in every manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: str
    window: tuple[datetime, datetime] | None
    customer_encoder: FeatureEncoder
    product_encoder: FeatureEncoder
    summary: dict[str, Any] = {}


class Recommender(ABC):
    """A recommendation model over integer customer and product indices.

    Subclasses set ``algorithm`` and ``params_model`` and implement ``_fit``, ``_score``,
    ``_arrays`` and ``_restore``; the public methods below validate inputs and rank.

    ``cold_inputs`` says what the model uses to score customers it did not see at fit time:
    ``"history"`` (interaction rows over the product index), ``"features"`` (rows encoded with
    ``customer_encoder``), both, or nothing (``score_cold`` raises :class:`ColdStartUnsupported`).
    """

    algorithm: ClassVar[str] = ""
    params_model: ClassVar[type[ModelParams]] = ModelParams
    cold_inputs: ClassVar[frozenset[ColdInput]] = frozenset()
    #: Bumped whenever a model's saved arrays change meaning or layout, so an artifact written
    #: by an older layout is refused with a clear message instead of failing part-way.
    layout_version: ClassVar[int] = 1

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        base = params.model_dump() if params is not None else {}
        self.params = self.params_model.model_validate({**base, **overrides})
        self.customer_ids: IdMap | None = None
        self.product_ids: IdMap | None = None
        self.context: FitContext | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    # ---- fitting ---------------------------------------------------------------------------
    def fit(self, dataset: Dataset) -> Self:
        """Train on ``dataset`` (replacing any previous fit) and return ``self``."""
        self.customer_ids = dataset.customer_ids
        self.product_ids = dataset.product_ids
        self.context = FitContext(
            fingerprint=dataset.fingerprint,
            window=dataset.window,
            customer_encoder=dataset.customer_encoder,
            product_encoder=dataset.product_encoder,
            summary=dataset.describe(),
        )
        self._fit(dataset)
        return self

    @classmethod
    def build_for_contract(cls, dataset: Dataset) -> Recommender:
        """An instance ready to ``fit`` on the small contract-test dataset.

        The contract tests call this for every registered algorithm; composite models that need
        members or extra setup override it. Defaults are used otherwise.
        """
        return cls()

    @property
    def is_fitted(self) -> bool:
        return self.context is not None

    @property
    def n_customers(self) -> int:
        return len(self._ids()[0])

    @property
    def n_products(self) -> int:
        return len(self._ids()[1])

    # ---- scoring ---------------------------------------------------------------------------
    def score(self, customers: np.ndarray) -> np.ndarray:
        """Scores (float32, len(customers) x n_products) for customers known at fit time."""
        idx = self._check_customers(customers)
        return np.asarray(self._score(idx), dtype=np.float32)

    def score_cold(
        self,
        history: sp.spmatrix | sp.sparray | None,
        features: sp.spmatrix | sp.sparray | None = None,
    ) -> np.ndarray:
        """Scores for customers unseen at fit time, from their history and/or feature rows.

        ``history`` is (n x n_products) over the product index; ``features`` is
        (n x len(customer_encoder.names)). Raises :class:`ColdStartUnsupported` when the model
        cannot use what was given.
        """
        if not self.cold_inputs:
            raise ColdStartUnsupported(
                f"{self.algorithm} cannot score customers unseen at fit "
                "time; route them to popularity, content or lightfm"
            )
        hist, feats = self._check_cold(history, features)
        return np.asarray(self._score_cold(hist, feats), dtype=np.float32)

    # ---- ranking ---------------------------------------------------------------------------
    def recommend(
        self,
        customers: np.ndarray,
        k: int,
        exclude: sp.spmatrix | sp.sparray | None = None,
        allowed: np.ndarray | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` products per known customer: (indices int32, scores float32), [n, k].

        ``exclude`` (n x n_products, any stored entry = excluded, e.g. holdings) and
        ``allowed`` (bool, n_products or n x n_products) remove products; rows with fewer than
        ``k`` eligible products are padded with index -1 and score -inf.
        """
        idx = self._check_customers(customers)
        return self._rank(
            lambda s, e: self._score(idx[s:e]), len(idx), k, exclude, allowed, chunk_size
        )

    def recommend_cold(
        self,
        history: sp.spmatrix | sp.sparray | None,
        features: sp.spmatrix | sp.sparray | None,
        k: int,
        exclude: sp.spmatrix | sp.sparray | None = None,
        allowed: np.ndarray | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`recommend` for customers unseen at fit time (see :meth:`score_cold`)."""
        if not self.cold_inputs:
            self.score_cold(history, features)  # raises ColdStartUnsupported
        hist, feats = self._check_cold(history, features)
        n = hist.shape[0] if hist is not None else feats.shape[0]  # type: ignore[union-attr]

        def block(s: int, e: int) -> np.ndarray:
            return self._score_cold(
                hist[s:e] if hist is not None else None, feats[s:e] if feats is not None else None
            )

        return self._rank(block, n, k, exclude, allowed, chunk_size)

    def similar_products(
        self, products: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` products most similar to each of ``products`` (never the product itself)."""
        idx = np.asarray(products, dtype=np.int64).reshape(-1)
        n_products = self.n_products
        if idx.size and (idx.min() < 0 or idx.max() >= n_products):
            raise IndexError(f"product index out of range [0, {n_products})")
        scores = np.asarray(self._similar(idx), dtype=np.float32).copy()
        scores[np.arange(idx.size), idx] = NEG_INF
        scores = apply_allowed(scores, allowed)
        return top_k(scores, k)

    def _rank(
        self,
        block: Any,
        n: int,
        k: int,
        exclude: sp.spmatrix | sp.sparray | None,
        allowed: np.ndarray | None,
        chunk_size: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        n_products = self.n_products
        excl = sp.csr_matrix(exclude) if exclude is not None else None
        if excl is not None and excl.shape != (n, n_products):
            raise ValueError(f"exclude has shape {excl.shape}, expected {(n, n_products)}")
        mask = None if allowed is None else np.asarray(allowed, dtype=bool)
        if mask is not None and mask.shape not in ((n_products,), (n, n_products)):
            raise ValueError(
                f"allowed has shape {mask.shape}, expected ({n_products},) or {(n, n_products)}"
            )
        out_idx = np.full((n, k), -1, dtype=np.int32)
        out_scores = np.full((n, k), NEG_INF, dtype=np.float32)
        for start, end in _chunks(n, chunk_size):
            scores = np.array(block(start, end), dtype=np.float32)  # own copy: masked in place
            apply_exclusions(scores, excl[start:end] if excl is not None else None)
            if mask is not None:
                scores = apply_allowed(scores, mask if mask.ndim == 1 else mask[start:end])
            out_idx[start:end], out_scores[start:end] = top_k(scores, k)
        return out_idx, out_scores

    # ---- persistence -----------------------------------------------------------------------
    def save(
        self, path: str | Path, metrics: dict[str, float] | None = None, overwrite: bool = False
    ) -> Path:
        """Write a verified artifact directory (see :mod:`recommenders.artifacts`)."""
        from recommenders.artifacts import save_artifact

        return save_artifact(self, path, metrics=metrics, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load an artifact written by :meth:`save`; refuses one of another algorithm."""
        from recommenders.artifacts import load_artifact

        model = load_artifact(path, expected=cls)
        assert isinstance(model, cls)
        return model

    # ---- what subclasses implement --------------------------------------------------------
    @abstractmethod
    def _fit(self, dataset: Dataset) -> None: ...

    @abstractmethod
    def _score(self, customers: np.ndarray) -> np.ndarray:
        """Dense scores for valid customer indices."""

    def _score_cold(
        self, history: sp.csr_matrix | None, features: sp.csr_matrix | None
    ) -> np.ndarray:
        raise ColdStartUnsupported(f"{self.algorithm} cannot score unseen customers")

    @abstractmethod
    def _similar(self, products: np.ndarray) -> np.ndarray:
        """Dense product-product similarity rows (len(products) x n_products)."""

    @abstractmethod
    def _arrays(self) -> Arrays:
        """Everything needed to score, as plain numpy arrays (no objects, no pickle)."""

    @abstractmethod
    def _restore(self, arrays: Arrays) -> None:
        """Inverse of :meth:`_arrays`; raise KeyError/ValueError on missing or bad arrays."""

    def _save_files(self, directory: Path) -> None:
        """Hook for composite models to write extra files (they are hashed like the rest)."""
        return None

    def _load_files(self, directory: Path) -> None:
        """Hook for composite models to read what :meth:`_save_files` wrote."""
        return None

    # ---- validation helpers ----------------------------------------------------------------
    def _ids(self) -> tuple[IdMap, IdMap]:
        if self.customer_ids is None or self.product_ids is None:
            raise NotFittedError(f"{self.algorithm} model is not fitted; call fit() or load()")
        return self.customer_ids, self.product_ids

    def _check_customers(self, customers: np.ndarray) -> np.ndarray:
        n_customers = len(self._ids()[0])
        idx = np.asarray(customers, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= n_customers):
            raise IndexError(
                f"customer index out of range [0, {n_customers}); "
                "score unseen customers with score_cold"
            )
        return idx

    def _check_cold(
        self, history: sp.spmatrix | sp.sparray | None, features: sp.spmatrix | sp.sparray | None
    ) -> tuple[sp.csr_matrix | None, sp.csr_matrix | None]:
        _, product_ids = self._ids()
        assert self.context is not None
        hist = sp.csr_matrix(history, dtype=np.float32) if history is not None else None
        feats = sp.csr_matrix(features, dtype=np.float32) if features is not None else None
        if hist is None and feats is None:
            raise ValueError("score_cold needs history, features or both")
        if hist is not None and hist.shape[1] != len(product_ids):
            raise ValueError(
                f"history has {hist.shape[1]} columns, model has {len(product_ids)} products"
            )
        n_feat = self.context.customer_encoder.n_features
        if feats is not None and feats.shape[1] != n_feat:
            raise ValueError(f"features have {feats.shape[1]} columns, model has {n_feat}")
        if hist is not None and feats is not None and hist.shape[0] != feats.shape[0]:
            raise ValueError("history and features must have the same number of rows")
        if "history" not in self.cold_inputs and hist is not None and feats is None:
            raise ColdStartUnsupported(
                f"{self.algorithm} scores unseen customers from features, not history"
            )
        if "features" not in self.cold_inputs and feats is not None and hist is None:
            raise ColdStartUnsupported(
                f"{self.algorithm} scores unseen customers from history, not features"
            )
        return hist, feats


class VectorModel(Recommender):
    """Base for factor models: score = customer_factors · product_factorsᵀ (+ biases).

    Subclasses fill the four arrays in ``_fit``; saving, loading, scoring, similar products
    and ranking are shared.
    """

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.customer_factors = np.zeros((0, 0), dtype=np.float32)
        self.product_factors = np.zeros((0, 0), dtype=np.float32)
        self.customer_bias: np.ndarray | None = None
        self.product_bias: np.ndarray | None = None

    def _score(self, customers: np.ndarray) -> np.ndarray:
        return self._dot(
            self.customer_factors[customers],
            None if self.customer_bias is None else self.customer_bias[customers],
        )

    def _dot(self, factors: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        scores = factors @ self.product_factors.T
        if self.product_bias is not None:
            scores += self.product_bias[None, :]
        if bias is not None:
            scores += bias[:, None]
        return scores

    def _similar(self, products: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(self.product_factors, axis=1)
        norms[norms == 0] = 1.0
        unit = self.product_factors / norms[:, None]
        result: np.ndarray = unit[products] @ unit.T
        return result

    def _arrays(self) -> Arrays:
        arrays: Arrays = {
            "customer_factors": self.customer_factors,
            "product_factors": self.product_factors,
        }
        if self.customer_bias is not None:
            arrays["customer_bias"] = self.customer_bias
        if self.product_bias is not None:
            arrays["product_bias"] = self.product_bias
        return arrays

    def _restore(self, arrays: Arrays) -> None:
        self.customer_factors = arrays["customer_factors"].astype(np.float32, copy=False)
        self.product_factors = arrays["product_factors"].astype(np.float32, copy=False)
        self.customer_bias = arrays.get("customer_bias")
        self.product_bias = arrays.get("product_bias")
        if (
            self.customer_factors.shape[0] != self.n_customers
            or self.product_factors.shape[0] != self.n_products
        ):
            raise ValueError("factor shapes do not match the ID maps")


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    size = max(1, size)
    for start in range(0, n, size):
        yield start, min(n, start + size)


def pack_csr(name: str, matrix: sp.spmatrix | sp.sparray) -> Arrays:
    """A CSR matrix as plain arrays ``name.data`` etc., for npz files without pickle."""
    m = sp.csr_matrix(matrix)
    return {
        f"{name}.data": m.data,
        f"{name}.indices": m.indices,
        f"{name}.indptr": m.indptr,
        f"{name}.shape": np.asarray(m.shape, dtype=np.int64),
    }


def unpack_csr(arrays: Arrays, name: str) -> sp.csr_matrix:
    """Inverse of :func:`pack_csr`."""
    shape = tuple(int(s) for s in arrays[f"{name}.shape"])
    return sp.csr_matrix(
        (arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]), shape=shape
    )
