"""Precompute: the batch equals the live API list per customer, publishes once, shards, exports."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Batch, BatchChunk, PrecomputedRecommendation
from app.jobs.precompute import PrecomputeError, PrecomputeOptions, Shard, run_precompute
from app.services.batches import BatchReader
from app.services.model_store import ModelStore
from app.services.profiles import read_profile
from app.services.recommend.catalog import load_catalog
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.promotions import PromotionBook
from app.services.recommend.service import RecommendationService, RecommendRequest
from app.settings import Settings
from tests.app.jobs.precompute_bank import AS_OF, publish_als, seed_bank

K = 6


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=tmp_path / "artifacts",
        default_strategy="als",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def bank(session_factory: sessionmaker[Session], tmp_path: Path) -> str:
    frames = seed_bank(session_factory)
    return publish_als(session_factory, frames, tmp_path / "artifacts" / "als")


def options(**overrides: object) -> PrecomputeOptions:
    base: dict[str, object] = {"k": K, "chunk_size": 50, "as_of": AS_OF}
    return PrecomputeOptions(**{**base, **overrides})  # type: ignore[arg-type]


def batch_rows(engine: Engine, batch_id: str) -> list[tuple[object, ...]]:
    table = PrecomputedRecommendation
    with engine.connect() as conn:
        query = (
            select(table.customer_id, table.rank, table.product_id, table.score, table.reason_codes)
            .where(table.batch_id == batch_id)
            .order_by(table.customer_id, table.rank)
        )
        return [tuple(r) for r in conn.execute(query)]


def live_service(
    settings: Settings, session_factory: sessionmaker[Session]
) -> RecommendationService:
    models = ModelStore(artifact_root=settings.artifact_dir)
    models.sync(session_factory)
    with session_factory() as session:
        catalog = load_catalog(session)
    return RecommendationService(
        settings, CatalogHolder(None, catalog), models, PromotionBook(None)
    )


@pytest.mark.parametrize("k", [K, 20])
def test_batch_equals_the_live_list_for_every_customer(
    engine: Engine, settings: Settings, session_factory: sessionmaker[Session], bank: str, k: int
) -> None:
    # k = 20 with five categories capped at 3 backfills every list (15 fit under the caps).
    result = run_precompute(engine, settings, options(k=k))
    assert result.complete and result.model_version == bank
    rows = pd.DataFrame(
        batch_rows(engine, result.batch_id),
        columns=["customer_id", "rank", "product_id", "score", "reason_codes"],
    )
    service = live_service(settings, session_factory)
    outcomes = result.outcomes
    assert outcomes.get("personalised", 0) > 100
    assert outcomes.get("non_personalised", 0) > 5 and outcomes.get("cold_start", 0) > 5
    assert sum(outcomes.values()) == result.customers_total == 240
    by_customer = dict(iter(rows.groupby("customer_id")))
    with session_factory() as session:
        customer_ids = [f"U{i:05d}" for i in range(240)]
        for cid in customer_ids:
            profile = read_profile(session, cid, settings.risk_assessment_validity_months)
            live = service.recommend(cid, profile, RecommendRequest(k=k), now=AS_OF)
            got = by_customer.get(cid)
            expected = [(i.product_id, "|".join(r["code"] for r in i.reasons)) for i in live.items]
            actual = (
                []
                if got is None
                else list(zip(got["product_id"], got["reason_codes"], strict=True))
            )
            assert actual == expected, cid
            if got is not None:
                assert list(got["rank"]) == list(range(1, len(expected) + 1))
                scores = [i.score for i in live.items]
                assert got["score"].tolist() == pytest.approx(scores, abs=2e-6)


def test_api_serves_the_complete_batch_and_only_it(
    engine: Engine, settings: Settings, session_factory: sessionmaker[Session], bank: str
) -> None:
    reader = BatchReader(session_factory, refresh_seconds=0)
    assert reader.lookup("U00001", "als") is None  # nothing published yet
    result = run_precompute(engine, settings, options())
    service = live_service(settings, session_factory)
    service.precomputed = reader
    with session_factory() as session:
        consenting = [
            c for c in (f"U{i:05d}" for i in range(60)) if read_profile(session, c, 24).consent
        ]
        for cid in consenting:
            profile = read_profile(session, cid, settings.risk_assessment_validity_months)
            served = service.recommend(cid, profile, RecommendRequest(k=K), now=AS_OF)
            entry = reader.lookup(cid, "als")
            if cid.endswith("19") or entry is None:
                continue
            assert served.served_from == "precomputed"
            assert served.model_version == result.model_version
            assert [i.product_id for i in served.items] == list(entry.product_ids)


def test_rerun_resumes_and_changes_nothing(engine: Engine, settings: Settings, bank: str) -> None:
    first = run_precompute(engine, settings, options())
    again = run_precompute(engine, settings, options())
    assert again.batch_id == first.batch_id
    assert again.chunks_written == 0 and again.chunks_resumed == first.chunks_total
    assert len(batch_rows(engine, first.batch_id)) == first.rows


def test_shards_are_disjoint_and_complete_together(
    engine: Engine, settings: Settings, bank: str
) -> None:
    whole = run_precompute(engine, settings, options())
    expected = batch_rows(engine, whole.batch_id)
    parts = [run_precompute(engine, settings, options(shard=Shard(i, 3))) for i in range(3)]
    assert [p.complete for p in parts] == [False, False, True]
    assert len({p.batch_id for p in parts}) == 1
    with engine.connect() as conn:
        shards = conn.execute(
            select(BatchChunk.shard_index, func.count())
            .where(BatchChunk.batch_id == parts[0].batch_id)
            .group_by(BatchChunk.shard_index)
        ).all()
        current = conn.execute(select(Batch.batch_id).where(Batch.is_current.is_(True))).all()
    assert sorted(n for _, n in shards) == [1, 2, 2]  # 5 chunks of 50 over 3 shards
    assert [b for (b,) in current] == [parts[0].batch_id]
    got = batch_rows(engine, parts[0].batch_id)
    assert [r[:3] + r[4:] for r in got] == [r[:3] + r[4:] for r in expected]


def test_export_csv_and_parquet_and_retention(
    engine: Engine, settings: Settings, bank: str, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "lists.csv"
    first = run_precompute(engine, settings, options(export=out, keep=1))
    with out.open(newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["customer_id", "rank", "product_id", "score", "reason_codes"]
    assert len(table) - 1 == first.rows == first.exported
    second = run_precompute(
        engine, settings, options(k=K - 1, export=tmp_path / "lists.parquet", keep=1)
    )
    frame = pd.read_parquet(tmp_path / "lists.parquet")
    assert len(frame) == second.rows and frame["rank"].max() == K - 1
    assert second.pruned == [first.batch_id]
    with engine.connect() as conn:
        left = conn.execute(select(PrecomputedRecommendation.batch_id).distinct()).scalars().all()
    assert left == [second.batch_id]


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [({"shard": None, "k": 0}, "usage"), ({"strategy": "nope"}, "config")],
)
def test_refusals_name_the_problem(
    engine: Engine, settings: Settings, bank: str, overrides: dict[str, object], kind: str
) -> None:
    overrides = {k: v for k, v in overrides.items() if v is not None}
    with pytest.raises(PrecomputeError) as info:
        run_precompute(engine, settings, options(**overrides))
    assert info.value.kind == kind


def test_shard_spec_is_checked() -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(PrecomputeError):
            Shard.parse(bad)


def test_http_api_answers_from_the_published_batch(
    engine: Engine, settings: Settings, bank: str
) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    result = run_precompute(engine, settings, options())
    rows = batch_rows(engine, result.batch_id)
    cid = next(
        c for c, _, _, _, codes in rows if "collaborative" in str(codes) and not c.endswith("19")
    )
    expected = [p for c, _, p, _, _ in rows if c == cid]
    from tests.conftest import READ_AUTH, seed_test_keys

    seed_test_keys(settings.database_url)
    with TestClient(create_app(settings), headers=READ_AUTH) as client:
        body = client.get(f"/v1/customers/{cid}/recommendations", params={"k": K}).json()
    assert body["served_from"] == "precomputed" and body["model_version"] == bank
    assert [item["product_id"] for item in body["items"]] == expected


def test_block_top_k_matches_the_live_ranking_row_by_row() -> None:
    import numpy as np

    from app.jobs.precompute.scoring import top_candidates
    from app.services.recommend.candidates import _best

    rng = np.random.default_rng(11)
    scores = rng.integers(0, 6, size=(200, 40)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    top, values = top_candidates(scores, 12)
    for row in range(scores.shape[0]):
        live = _best(scores[row].copy(), 12)
        assert top[row][top[row] >= 0].tolist() == live.tolist()
        assert values[row][: live.size].tolist() == scores[row][live].tolist()


def test_a_chunk_written_twice_is_refused_whole(
    engine: Engine, settings: Settings, bank: str
) -> None:
    from app.jobs.precompute import store

    result = run_precompute(engine, settings, options())
    rows = [(result.batch_id, *r) for r in batch_rows(engine, result.batch_id)][:30]
    again = store.write_chunk(engine, result.batch_id, 0, 0, rows, 5, {}, 0.0)  # type: ignore[arg-type]
    assert again is False
    assert len(batch_rows(engine, result.batch_id)) == result.rows
