"""Precompute population: chunks read by keyset pagination cover every customer once, in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Customer, Holding, Product
from app.jobs.precompute import PrecomputeError, PrecomputeOptions, run_precompute
from app.jobs.precompute.population import DataChanged, PopulationReader
from app.services.recommend.catalog import load_catalog
from app.settings import Settings
from tests.app.jobs.precompute_bank import AS_OF, publish_als, seed_bank


def reader(session: Session, chunk_size: int) -> PopulationReader:
    return PopulationReader(session, load_catalog(session), AS_OF, 12, chunk_size)


def test_chunks_cover_every_customer_once_in_id_order_with_their_holdings(
    session_factory: sessionmaker[Session],
) -> None:
    seed_bank(session_factory)
    with session_factory() as session:
        ids = session.scalars(select(Customer.customer_id).order_by(Customer.customer_id)).all()
        held = {
            (c, p)
            for c, p in session.execute(
                select(Customer.customer_id, Product.product_id)
                .join(Holding, Holding.customer_pk == Customer.id)
                .join(Product, Product.id == Holding.product_pk)
            )
        }
        read = reader(session, 70)
        plan = read.plan(session)
        seen: list[str] = []
        pairs: set[tuple[str, str]] = set()
        for chunk in range(plan.chunks):
            block = read.chunk(session, plan, chunk)
            assert block.size == plan.bounds(chunk)[1] - plan.bounds(chunk)[0]
            for row in range(block.size):
                profile = block.profile(row)
                seen.append(profile.customer_id)
                pairs |= {(profile.customer_id, p) for p in profile.held}
    assert plan.size == len(ids) == 240
    assert plan.chunks == 4  # 70 + 70 + 70 + 30
    assert seen == list(ids)
    catalogue = {p for _, p in pairs}
    assert pairs == {(c, p) for c, p in held if p in catalogue}
    assert pairs  # the bank holds products, so the comparison above is not vacuous


def test_fingerprint_follows_the_data_and_a_change_mid_run_is_caught(
    session_factory: sessionmaker[Session],
) -> None:
    seed_bank(session_factory)
    with session_factory() as session:
        read = reader(session, 100)
        plan = read.plan(session)
        assert read.plan(session).fingerprint == plan.fingerprint
        last = session.scalars(
            select(Customer.customer_id).order_by(Customer.customer_id.desc())
        ).first()
        session.execute(
            update(Customer).where(Customer.customer_id == last).values(segment="changed")
        )
        session.flush()
        read.chunk(session, plan, 0)  # the first chunk is untouched
        with pytest.raises(DataChanged):
            read.chunk(session, plan, plan.chunks - 1)
        assert read.plan(session).fingerprint != plan.fingerprint


def test_a_run_on_a_bank_without_customers_is_refused(
    session_factory: sessionmaker[Session], engine: Engine, database_url: str, tmp_path: Path
) -> None:
    frames = seed_bank(session_factory)
    publish_als(session_factory, frames, tmp_path / "artifacts" / "als")
    with session_factory() as session, session.begin():
        session.execute(Holding.__table__.delete())
        session.execute(Customer.__table__.delete())
    settings = Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=tmp_path / "artifacts",
        default_strategy="als",
        _env_file=None,  # type: ignore[call-arg]
    )
    with pytest.raises(PrecomputeError) as refused:
        run_precompute(engine, settings, PrecomputeOptions(k=4, chunk_size=50, as_of=AS_OF))
    assert refused.value.kind == "invalid_data"
