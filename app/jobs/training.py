"""``finrec train`` as a job: load frames, build the dataset, fit, save the artifact, register.

The artifact is written under ``settings.artifact_dir/<version>/`` and registered in one
transaction (optionally activated in the same one). If anything fails after the artifact was
written, the directory is removed again, so nothing is left half-done: either the version is on
disk *and* in the registry, or neither.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app.db.session import make_engine, make_session_factory, session_scope
from app.jobs.training_data import TrainingFrames, load_frames_from_db, load_frames_from_files
from app.services import registry
from app.services.errors import InvalidParams, TrainingDataError
from app.settings import Settings
from recommenders.artifacts import save_artifact, verify_artifact
from recommenders.base import Recommender
from recommenders.dataset import Dataset, DatasetConfig
from recommenders.errors import DatasetError, UnknownAlgorithmError
from recommenders.evaluation.report import BASELINE
from recommenders.evaluation.runner import SplitSpec, evaluate_dataset
from recommenders.registry import ALGORITHMS, get_algorithm

StageCallback = Callable[[str], None]
VALIDATION_K = 10


@dataclass
class TrainingResult:
    """What one training run produced (printed by the CLI, returned to callers)."""

    version: str
    algorithm: str
    artifact_path: Path
    artifact_sha256: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    data: dict[str, Any]
    trained_at: datetime
    activated: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


# ---- parameters ----------------------------------------------------------------------------
def parse_param_pairs(pairs: Sequence[str]) -> dict[str, Any]:
    """``["factors=64", "use_gpu=false", "members.als.factors=32"]`` -> a nested dict.

    Values are JSON literals when they parse as JSON (numbers, booleans, null, lists, objects)
    and plain strings otherwise; dotted keys build nested objects.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidParams(f"parameter {pair!r} is not of the form key=value")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        target = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = target.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidParams(f"parameter {key!r} conflicts with a value given for {part!r}")
            target = node
        target[leaf] = value
    return params


def _describe_validation(exc: ValidationError, allowed: Sequence[str]) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "params"
        if error["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown parameter (allowed: {', '.join(allowed)})")
        else:
            problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def build_model(algorithm: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A fresh model of ``algorithm`` with ``params`` checked by its strict config."""
    try:
        cls = get_algorithm(algorithm)
    except UnknownAlgorithmError as exc:
        raise InvalidParams(str(exc)) from exc
    try:
        config = cls.params_model.model_validate(dict(params or {}))
    except ValidationError as exc:
        allowed = sorted(cls.params_model.model_fields)
        detail = _describe_validation(exc, allowed)
        raise InvalidParams(f"invalid parameters for {algorithm}: {detail}") from exc
    return cls(config)


def known_algorithms() -> list[str]:
    return sorted(ALGORITHMS)


def dataset_config(settings: Settings, overrides: Mapping[str, Any] | None = None) -> DatasetConfig:
    """The dataset config from settings (event weights, holding/take-up types) plus overrides."""
    base: dict[str, Any] = {
        "event_weights": dict(settings.event_weights),
        "holding_event_types": list(settings.holding_event_types),
        "takeup_event_types": list(settings.takeup_event_types),
        "risk_assessment_validity_months": settings.risk_assessment_validity_months,
    }
    try:
        return DatasetConfig.model_validate({**base, **dict(overrides or {})})
    except ValidationError as exc:
        allowed = sorted(DatasetConfig.model_fields)
        raise InvalidParams(f"invalid data settings: {_describe_validation(exc, allowed)}") from exc


# ---- stages --------------------------------------------------------------------------------
class _Clock:
    def __init__(self, on_stage: StageCallback | None) -> None:
        self.on_stage = on_stage
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, label: str) -> Iterator[None]:
        if self.on_stage is not None:
            self.on_stage(label)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)


def load_frames(
    settings: Settings, from_files: Path | None = None, on_stage: StageCallback | None = None
) -> TrainingFrames:
    """Frames from ``from_files`` (import-contract files) or from the configured database."""

    def rows(kind: str, n: int) -> None:
        if on_stage is not None:
            on_stage(f"reading {kind}: {n:,} rows")

    if from_files is not None:
        return load_frames_from_files(from_files, on_rows=rows)
    engine = make_engine(settings.database_url)
    try:
        return load_frames_from_db(engine, settings.import_chunk_rows, on_rows=rows)
    except SQLAlchemyError as exc:
        raise TrainingDataError(f"cannot read training data from the database: {exc}") from exc
    finally:
        engine.dispose()


def build_dataset(frames: TrainingFrames, config: DatasetConfig) -> Dataset:
    """The library dataset; contract violations become :class:`TrainingDataError`."""
    try:
        dataset = Dataset.from_frames(
            frames.customers, frames.products, frames.interactions, config
        )
    except DatasetError as exc:
        raise TrainingDataError(str(exc)) from exc
    if dataset.n_customers == 0 or dataset.n_products == 0:
        raise TrainingDataError("no customers or no products to train on; import data first")
    if dataset.interactions.nnz == 0:
        raise TrainingDataError(
            "no usable interactions (none name a known customer and product with a weighted "
            "event type); import interactions first"
        )
    return dataset


def _model_metrics(model: Recommender) -> dict[str, Any]:
    """Metrics a model computed while fitting (e.g. the fusion's tuned weights and score)."""
    metrics: dict[str, Any] = {}
    reported = getattr(model, "metrics", None)
    if isinstance(reported, Mapping):
        metrics.update({str(k): v for k, v in reported.items()})
    tuned = getattr(model, "validation_ndcg", None)
    if isinstance(tuned, float) and math.isfinite(tuned):
        at = getattr(model.params, "tune_k", 10)
        metrics[f"tuning_ndcg@{at}"] = round(tuned, 6)
    weights = getattr(model, "member_weights", None)
    if callable(weights):
        metrics["member_weights"] = {str(k): float(v) for k, v in weights().items()}
    return metrics


def validation_metrics(
    dataset: Dataset,
    algorithm: str,
    params: Mapping[str, Any],
    k: int = VALIDATION_K,
    test_fraction: float = 0.2,
) -> dict[str, Any]:
    """Hold out the last ``test_fraction`` of events (time split), fit, and score at ``k``.

    Returns ``validation_<metric>@k`` for the model and ``validation_popularity_ndcg@k`` for
    the baseline, so a registered version says how it compares before anyone activates it.
    """
    try:
        report = evaluate_dataset(
            dataset,
            [algorithm],
            params={algorithm: dict(params)},
            split=SplitSpec(kind="time", test_fraction=test_fraction),
            ks=[k],
        )
    except ValueError as exc:
        raise TrainingDataError(f"cannot validate: {exc}") from exc
    ours = report.result(algorithm).metrics[k]
    metrics: dict[str, Any] = {
        f"validation_{name}@{k}": round(float(value), 6)
        for name, value in ours.items()
        if math.isfinite(value)
    }
    baseline = report.result(BASELINE).metrics[k]["ndcg"]
    if algorithm != BASELINE and math.isfinite(baseline):
        metrics[f"validation_popularity_ndcg@{k}"] = round(float(baseline), 6)
    metrics["validation_protocol"] = {
        str(key): value
        if isinstance(value, int | float | str | bool) or value is None
        else str(value)
        for key, value in report.protocol.items()
    }
    return metrics


def publish_artifact(
    model: Recommender,
    settings: Settings,
    *,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[str, Path, dict[str, Any]]:
    """Save ``model`` under ``artifact_dir/<version>``; returns (version, path, manifest)."""
    root = Path(settings.artifact_dir)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{model.algorithm}-{uuid.uuid4().hex}"
    save_artifact(model, staging, metrics=dict(metrics or {}), extra=dict(extra or {}))
    try:
        manifest = verify_artifact(staging)
        trained_at = datetime.fromisoformat(str(manifest["created_at"]))
        version = registry.make_version_id(
            model.algorithm, trained_at, str(manifest["content_sha256"])
        )
        final = root / version
        if final.exists():
            raise TrainingDataError(f"artifact directory {final} already exists")
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return version, final, manifest


def train(
    settings: Settings,
    algorithm: str,
    params: Mapping[str, Any] | None = None,
    *,
    from_files: Path | None = None,
    data_overrides: Mapping[str, Any] | None = None,
    activate: bool = False,
    validate: bool = False,
    actor: str | None = None,
    on_stage: StageCallback | None = None,
) -> TrainingResult:
    """Train ``algorithm`` on the current data, publish the artifact and register it.

    With ``validate`` the model is first fitted on all but the latest 20% of events and scored
    on the products customers newly took up after that (see :func:`validation_metrics`); the
    published model is always fitted on all events. With ``activate`` the new version serves
    its algorithm's strategy as soon as the transaction commits (a pinned strategy is left
    alone and reported as an error).
    """
    model = build_model(algorithm, params)  # bad parameters fail before any data is read
    config = dataset_config(settings, data_overrides)
    clock = _Clock(on_stage)
    with clock.stage("load", "reading training data"):
        frames = load_frames(settings, from_files, on_stage)
    with clock.stage("dataset", "building the dataset"):
        dataset = build_dataset(frames, config)
    del frames
    metrics: dict[str, Any] = {}
    if validate:
        with clock.stage("validate", f"validating {algorithm} on a time split"):
            metrics.update(validation_metrics(dataset, algorithm, model.params.model_dump()))
    with clock.stage("fit", f"fitting {algorithm}"):
        try:
            model.fit(dataset)
        except DatasetError as exc:
            raise TrainingDataError(str(exc)) from exc
    metrics.update(_model_metrics(model))
    with clock.stage("save", "saving the artifact"):
        version, path, manifest = publish_artifact(
            model, settings, metrics=metrics, extra={"timings": dict(clock.timings)}
        )
    trained_at = datetime.fromisoformat(str(manifest["created_at"]))
    activated: str | None = None
    try:
        with clock.stage("register", "registering the version"):
            engine = make_engine(settings.database_url)
            try:
                with session_scope(make_session_factory(engine)) as session:
                    row = registry.register_artifact(
                        session, path, version=version, trained_at=trained_at
                    )
                    if activate:
                        activated = registry.activate(session, row.version, actor=actor).strategy
            finally:
                engine.dispose()
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return TrainingResult(
        version=version,
        algorithm=algorithm,
        artifact_path=path,
        artifact_sha256=str(manifest["content_sha256"]),
        params=model.params.model_dump(mode="json"),
        metrics=dict(manifest.get("metrics") or {}),
        data=dataset.describe()
        | {"window": [t.isoformat() for t in dataset.window] if dataset.window else None},
        trained_at=trained_at,
        activated=activated,
        timings=clock.timings,
    )
