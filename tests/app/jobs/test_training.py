"""The training job: frames from the database or files, artifact on disk, version registered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Interaction, Product
from app.jobs import training
from app.jobs.training_data import load_frames_from_db, load_frames_from_files
from app.services import registry
from app.services.errors import InvalidParams, TrainingDataError
from app.settings import Settings
from recommenders.artifacts import artifact_hash, load_artifact
from recommenders.registry import ALGORITHMS

START = datetime(2024, 1, 1, tzinfo=UTC)


def tiny_bank_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Savers hold deposits, investors hold funds; one fund nobody touched."""
    customers = pd.DataFrame(
        {
            "customer_id": [f"s{i}" for i in range(6)] + [f"i{i}" for i in range(6)],
            "segment": ["mass"] * 6 + ["affluent"] * 6,
            "risk_class": ["C2"] * 6 + ["C4"] * 6,
            "risk_assessed_at": [START] * 12,
            "age": [30] * 6 + [50] * 6,
            "income_band": ["low"] * 6 + ["high"] * 6,
            "channel": ["app"] * 12,
            "consent_personalization": [True] * 11 + [False],
            "tenure_years": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] * 2,
            "digital_active": [True, False] * 6,
        }
    )
    products = pd.DataFrame(
        {
            "product_id": ["D1", "D2", "D3", "F1", "F2", "F3", "F4"],
            "name": [f"Product {i}" for i in range(7)],
            "category": ["deposit"] * 3 + ["fund"] * 4,
            "risk_level": ["R1", "R1", "R2", "R3", "R4", "R4", "R4"],
            "status": ["active"] * 6 + ["draft"],
            "tags": [["savings"]] * 3 + [["equity", "growth"]] * 4,
        }
    )
    rows = []
    for n, cid in enumerate(customers["customer_id"]):
        block = ["D1", "D2", "D3"] if cid.startswith("s") else ["F1", "F2", "F3"]
        for j, pid in enumerate(block[: 1 + n % 3]):
            kind = ("hold", "view", "purchase")[j]
            rows.append((cid, pid, kind, START + timedelta(days=n + j, hours=3)))
    interactions = pd.DataFrame(
        rows, columns=["customer_id", "product_id", "event_type", "occurred_at"]
    )
    return customers, products, interactions


def write_frames_to_db(factory: sessionmaker[Session]) -> None:
    customers, products, interactions = tiny_bank_frames()
    with factory() as session:
        cmap = {}
        for row in customers.to_dict("records"):
            obj = Customer(
                customer_id=row["customer_id"],
                segment=row["segment"],
                age=row["age"],
                income_band=row["income_band"],
                risk_class=row["risk_class"],
                risk_assessed_at=row["risk_assessed_at"],
                channel=row["channel"],
                consent_personalization=row["consent_personalization"],
                # Importers may keep boolean features as text; training reads them as booleans.
                features={
                    "tenure_years": row["tenure_years"],
                    "digital_active": str(row["digital_active"]).lower(),
                },
            )
            session.add(obj)
            cmap[row["customer_id"]] = obj
        pmap = {}
        for row in products.to_dict("records"):
            obj = Product(
                product_id=row["product_id"],
                name=row["name"],
                category=row["category"],
                risk_level=row["risk_level"],
                status=row["status"],
                tags=row["tags"],
                features={},
            )
            session.add(obj)
            pmap[row["product_id"]] = obj
        session.flush()
        for i, row in enumerate(interactions.itertuples()):
            session.add(
                Interaction(
                    event_id=f"e{i}",
                    customer_pk=cmap[row.customer_id].id,
                    product_pk=pmap[row.product_id].id,
                    event_type=row.event_type,
                    occurred_at=row.occurred_at,
                )
            )
        session.commit()


def write_frames_to_files(directory: Path, csv: bool = True) -> Path:
    customers, products, interactions = tiny_bank_frames()
    directory.mkdir(parents=True, exist_ok=True)
    products = products.assign(tags=products["tags"].map("|".join))
    for name, frame in (
        ("customers", customers),
        ("products", products),
        ("interactions", interactions),
    ):
        if csv:
            frame.to_csv(directory / f"{name}.csv", index=False)
        else:
            frame.to_parquet(directory / f"{name}.parquet", index=False)
    return directory


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, artifact_dir=tmp_path / "artifacts")


def test_db_frames_follow_the_import_contract(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    write_frames_to_db(session_factory)
    from app.db.session import make_engine

    engine = make_engine(database_url)
    frames = load_frames_from_db(engine, chunk_rows=5)
    engine.dispose()
    customers, products, interactions = tiny_bank_frames()
    assert frames.counts() == {
        "customers": len(customers),
        "products": len(products),
        "interactions": len(interactions),
    }
    assert frames.customers["tenure_years"].tolist() == customers["tenure_years"].tolist()
    assert frames.customers["digital_active"].tolist() == customers["digital_active"].tolist()
    assert not frames.customers.loc[11, "consent_personalization"]
    assert frames.products["tags"].tolist() == products["tags"].tolist()
    got = frames.interactions.sort_values(["customer_id", "product_id"]).reset_index(drop=True)
    want = interactions.sort_values(["customer_id", "product_id"]).reset_index(drop=True)
    assert got["event_type"].tolist() == want["event_type"].tolist()
    assert (got["occurred_at"] == pd.to_datetime(want["occurred_at"], utc=True)).all()


@pytest.mark.parametrize("csv", [True, False])
def test_file_frames_match_db_frames_dataset(tmp_path: Path, csv: bool) -> None:
    frames = load_frames_from_files(write_frames_to_files(tmp_path / "data", csv=csv))
    dataset = training.build_dataset(frames, training.DatasetConfig())
    assert (dataset.n_customers, dataset.n_products) == (12, 7)
    assert dataset.interactions.nnz == len(tiny_bank_frames()[2])
    assert "tag=equity" in dataset.product_feature_names


def test_train_from_db_publishes_and_registers(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_frames_to_db(session_factory)
    stages: list[str] = []
    result = training.train(
        settings, "popularity", {"by_segment": True}, activate=True, on_stage=stages.append
    )

    assert result.artifact_path == Path(settings.artifact_dir) / result.version
    assert result.version.startswith("popularity-")
    assert result.version.endswith(result.artifact_sha256[:8])
    assert artifact_hash(result.artifact_path) == result.artifact_sha256
    assert result.activated == "popularity"
    assert set(result.timings) == {"load", "dataset", "fit", "save", "register"}
    assert any("fitting popularity" in s for s in stages)
    assert [p.name for p in Path(settings.artifact_dir).iterdir()] == [result.version]

    with session_factory() as session:
        row = registry.get_version(session, result.version)
        assert row.status == "active"
        assert row.data_fingerprint == result.data["fingerprint"]
        assert row.data_window_start == START + timedelta(hours=3)
        assert registry.active_versions(session) == {"popularity": result.version}

    model = load_artifact(result.artifact_path)
    idx, _ = model.recommend(np.asarray([0]), k=2)
    assert set(model.product_ids.to_external(idx[0])) <= {"D1", "D2", "D3"}


def test_train_from_files_matches_db_fingerprint(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    write_frames_to_db(session_factory)
    from_db = training.train(settings, "popularity")
    from_files = training.train(
        settings, "popularity", from_files=write_frames_to_files(tmp_path / "data")
    )
    assert from_db.data["fingerprint"] == from_files.data["fingerprint"]
    with session_factory() as session:
        assert len(registry.list_versions(session)) == 2
        assert registry.active_versions(session) == {}


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_registered_algorithm_trains_and_loads(
    settings: Settings, tmp_path: Path, algorithm: str
) -> None:
    result = training.train(settings, algorithm, from_files=write_frames_to_files(tmp_path / "d"))
    model = load_artifact(result.artifact_path)
    assert model.algorithm == algorithm
    assert model.score(np.asarray([0, 6])).shape == (2, 7)


def test_validate_records_holdout_metrics(settings: Settings, tmp_path: Path) -> None:
    data = write_frames_to_files(tmp_path / "data")
    result = training.train(settings, "popularity", from_files=data, validate=True)
    assert 0.0 <= result.metrics["validation_ndcg@10"] <= 1.0
    assert result.metrics["validation_protocol"]["kind"] == "time"
    assert "validate" in result.timings


def test_bad_params_fail_before_reading_data(settings: Settings) -> None:
    with pytest.raises(InvalidParams, match=r"unknown parameter \(allowed: by_segment"):
        training.train(settings, "popularity", {"factors": 3})
    with pytest.raises(InvalidParams, match="shrinkage"):
        training.train(settings, "popularity", {"shrinkage": -1})
    with pytest.raises(InvalidParams, match="unknown algorithm 'nope'"):
        training.train(settings, "nope")


def test_empty_database_is_a_clear_error_and_leaves_nothing(settings: Settings) -> None:
    with pytest.raises(TrainingDataError, match="import data first"):
        training.train(settings, "popularity")
    assert not Path(settings.artifact_dir).exists() or not any(
        Path(settings.artifact_dir).iterdir()
    )


def test_failed_registration_removes_the_artifact(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    write_frames_to_db(session_factory)
    with session_factory() as session:
        first = training.train(settings, "popularity", activate=True)
        registry.pin(session, "popularity")
        session.commit()
    from app.services.errors import StrategyPinned

    with pytest.raises(StrategyPinned):
        training.train(settings, "popularity", activate=True)
    assert [p.name for p in Path(settings.artifact_dir).iterdir()] == [first.version]
    with session_factory() as session:
        assert [v.version for v in registry.list_versions(session)] == [first.version]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["factors=64", "use_gpu=false"], {"factors": 64, "use_gpu": False}),
        (["name=cosine", "alpha=1.5"], {"name": "cosine", "alpha": 1.5}),
        (['members=["als","content"]'], {"members": ["als", "content"]}),
        (["a.b=1", "a.c=x"], {"a": {"b": 1, "c": "x"}}),
        (["empty="], {"empty": ""}),
    ],
)
def test_param_pairs_parse_json_literals(pairs: list[str], expected: dict[str, object]) -> None:
    assert training.parse_param_pairs(pairs) == expected


def test_param_pairs_reject_malformed() -> None:
    with pytest.raises(InvalidParams, match="key=value"):
        training.parse_param_pairs(["factors"])
    with pytest.raises(InvalidParams, match="conflicts"):
        training.parse_param_pairs(["a=1", "a.b=2"])
