"""End-to-end imports on every configured backend: what lands, what is refused, what repeats."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from app.db.models import Customer, Holding, ImportRun, Interaction, Product
from app.jobs.importer import (
    ImportKind,
    ImportResult,
    InvalidRowsError,
    SourceError,
    run_import,
)
from app.jobs.importer.report import REASON_COLUMN, ROW_COLUMN
from app.settings import Settings
from tests.app.jobs.conftest import CUSTOMERS_CSV, INTERACTIONS_CSV, PRODUCTS_CSV

PRODUCTS_HEADER = "product_id,name,category,risk_level"
Load = Callable[..., ImportResult]
Write = Callable[[str, str], Path]


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_customers_load_with_types_defaults_and_features(
    engine: Engine, load: Load, write: Write
) -> None:
    result = load("customers", write("customers.csv", CUSTOMERS_CSV))
    assert (result.status, result.rows_read, result.rows_written) == ("succeeded", 3, 3)
    with engine.connect() as conn:
        rows = {c.customer_id: c for c in conn.execute(select(Customer)).all()}
    assert rows["c1"].risk_class == "C3" and rows["c1"].age == 34
    assert rows["c1"].features == {"tenure_years": 4}
    assert rows["c2"].consent_personalization is False
    assert rows["c2"].risk_assessed_at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert rows["c3"].consent_personalization is True  # blank means the default
    assert rows["c3"].risk_class is None and rows["c3"].features == {}


def test_products_load_with_status_default_and_tags(
    engine: Engine, load: Load, write: Write
) -> None:
    load("products", write("products.csv", PRODUCTS_CSV))
    with engine.connect() as conn:
        rows = {p.product_id: p for p in conn.execute(select(Product)).all()}
    assert rows["p1"].tags == ["savings", "liquid"]
    assert rows["p1"].features == {"min_amount": 100}
    assert rows["p2"].status == "active" and rows["p3"].status == "suspended"
    assert str(rows["p2"].launch_date) == "2022-06-15" and rows["p3"].tags == []


@pytest.mark.usefixtures("bank")
def test_interactions_load_and_derive_holdings(engine: Engine, load: Load, write: Write) -> None:
    result = load("interactions", write("events.csv", INTERACTIONS_CSV))
    assert (result.rows_written, result.holdings_written) == (5, 2)
    with engine.connect() as conn:
        holdings = conn.execute(
            select(Customer.customer_id, Product.product_id, Holding.since)
            .join(Customer, Customer.id == Holding.customer_pk)
            .join(Product, Product.id == Holding.product_pk)
        ).all()
        clicked = conn.execute(select(Interaction).where(Interaction.event_id == "e4")).one()
    # since = the earliest holding event, not the first one in the file
    assert {(c, p): s for c, p, s in holdings} == {
        ("c1", "p1"): datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
        ("c2", "p2"): datetime(2025, 2, 1, tzinfo=UTC),
    }
    assert clicked.occurred_at == datetime.fromtimestamp(1743500000, UTC)
    assert clicked.channel == "web" and clicked.value is None


@pytest.mark.usefixtures("bank")
def test_holdings_take_the_earliest_event_across_chunks_and_imports(
    engine: Engine, settings: Settings, write: Write, tmp_path: Path
) -> None:
    # Parquet chunks are exactly import_chunk_rows long: the earlier purchase of c1/p1 comes
    # in the second chunk, and c2/p2 appears only in the third.
    frame = pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4", "e5"],
            "customer_id": ["c1", "c1", "c2", "c1", "c2"],
            "product_id": ["p1", "p1", "p2", "p1", "p2"],
            "event_type": ["purchase", "view", "click", "hold", "hold"],
            "occurred_at": pd.to_datetime(
                [
                    "2025-04-02T10:00:00Z",
                    "2025-04-03T10:00:00Z",
                    "2025-04-03T11:00:00Z",
                    "2025-03-01T08:00:00Z",
                    "2025-02-01T00:00:00Z",
                ]
            ),
        }
    )
    frame.to_parquet(tmp_path / "events.parquet")
    small_chunks = settings.model_copy(update={"import_chunk_rows": 2})

    def load(path: Path) -> ImportResult:
        return run_import(engine, small_chunks, ImportKind.INTERACTIONS, path)

    assert load(tmp_path / "events.parquet").holdings_written == 2
    header = "event_id,customer_id,product_id,event_type,occurred_at"
    earlier = load(write("a.csv", f"{header}\ne9,c1,p1,hold,2025-01-05T00:00:00Z\n"))
    later = load(write("b.csv", f"{header}\ne10,c2,p2,purchase,2025-06-01T00:00:00Z\n"))
    assert (earlier.holdings_written, later.holdings_written) == (1, 0)
    with engine.connect() as conn:
        since = conn.execute(
            select(Customer.customer_id, Holding.since).join(
                Customer, Customer.id == Holding.customer_pk
            )
        ).all()
    assert dict(since) == {
        "c1": datetime(2025, 1, 5, tzinfo=UTC),
        "c2": datetime(2025, 2, 1, tzinfo=UTC),
    }


@pytest.mark.usefixtures("bank")
def test_second_import_of_the_same_file_adds_nothing(
    engine: Engine, load: Load, write: Write
) -> None:
    # Without event_id the content hash is the key, so it must be deterministic too.
    no_ids = "\n".join(line.split(",", 1)[1] for line in INTERACTIONS_CSV.splitlines()) + "\n"
    for name, text in (("with_ids.csv", INTERACTIONS_CSV), ("without_ids.csv", no_ids)):
        path = write(name, text)
        load("interactions", path)
        before = (count(engine, Interaction), count(engine, Holding))
        again = load("interactions", path)
        assert (again.rows_written, again.rows_unchanged) == (0, 5)
        assert (count(engine, Interaction), count(engine, Holding)) == before
    assert count(engine, Interaction) == 10


def test_upsert_keeps_columns_the_file_does_not_have(
    engine: Engine, load: Load, write: Write
) -> None:
    load("products", write("products.csv", PRODUCTS_CSV))
    result = load("products", write("renamed.csv", f"{PRODUCTS_HEADER}\np3,Travel Card+,card,R1\n"))
    assert (result.rows_written, result.rows_unchanged) == (1, 0)
    with engine.connect() as conn:
        p3 = conn.execute(select(Product).where(Product.product_id == "p3")).one()
    # status was suspended; a file without a status column must not re-activate it
    assert (p3.name, p3.status, p3.features) == ("Travel Card+", "suspended", {})


def test_customers_upsert_updates_only_what_changed(
    engine: Engine, load: Load, write: Write
) -> None:
    load("customers", write("customers.csv", CUSTOMERS_CSV))
    changed = CUSTOMERS_CSV.replace("c1,C3,2025-01-10,mass,34", "c1,C4,2025-01-10,mass,35")
    result = load("customers", write("customers2.csv", changed))
    assert (result.rows_written, result.rows_unchanged) == (1, 2)
    with engine.connect() as conn:
        c1 = conn.execute(select(Customer).where(Customer.customer_id == "c1")).one()
    assert (c1.risk_class, c1.age) == ("C4", 35)
    assert count(engine, Customer) == 3


@pytest.mark.usefixtures("bank")
def test_one_bad_row_refuses_the_file_and_writes_nothing(
    engine: Engine, load: Load, write: Write
) -> None:
    bad = INTERACTIONS_CSV.replace("e4,c2,p2,click", "e4,c2,p2,clicked")
    with pytest.raises(InvalidRowsError) as refused:
        load("interactions", write("events.csv", bad))
    assert [(r.row, r.reason) for r in refused.value.result.first_rejects] == [
        (4, "event_type 'clicked' is not one of view, click, apply, purchase, hold")
    ]
    assert (count(engine, Interaction), count(engine, Holding)) == (0, 0)
    with engine.connect() as conn:
        runs = conn.execute(select(ImportRun.kind, ImportRun.status, ImportRun.rows_rejected))
        assert ("interactions", "refused", 1) in runs.all()


@pytest.mark.usefixtures("bank")
def test_skip_invalid_loads_the_rest_and_writes_rejects_beside_the_input(
    engine: Engine, load: Load, write: Write
) -> None:
    bad = INTERACTIONS_CSV.replace("e4,c2,p2", "e4,c9,p2").replace(
        "e5,c2,p2,hold,2025-02-01", "e5,c2,p2,hold,someday"
    )
    path = write("events.csv", bad)
    result = load("interactions", path, skip_invalid=True)
    assert (result.status, result.rows_written, result.rows_rejected) == ("partial", 3, 2)
    assert result.rejects_path == path.with_name("events.rejects.csv")
    rejects = pd.read_csv(result.rejects_path, dtype=str)
    assert list(rejects.columns) == [
        *INTERACTIONS_CSV.splitlines()[0].split(","),
        ROW_COLUMN,
        REASON_COLUMN,
    ]
    assert rejects[ROW_COLUMN].tolist() == ["4", "5"]
    assert rejects["customer_id"].tolist() == ["c9", "c2"]
    assert "unknown customer_id 'c9'" in rejects[REASON_COLUMN][0]
    assert "occurred_at 'someday' is not an ISO-8601" in rejects[REASON_COLUMN][1]
    assert count(engine, Interaction) == 3


@pytest.mark.usefixtures("bank")
def test_duplicate_event_id_in_a_later_chunk_is_caught(
    engine: Engine, load: Load, write: Write
) -> None:
    rows = [f"x{i},c1,p1,view,2025-01-01T00:00:00Z,," for i in range(1, 1501)]
    rows[1299] = "x7,c1,p1,view,2025-01-01T00:00:00Z,,"  # row 1300 repeats row 7, chunk 2
    text = "event_id,customer_id,product_id,event_type,occurred_at,value,channel\n"
    path = write("many.csv", text + "\n".join(rows) + "\n")
    with pytest.raises(InvalidRowsError) as refused:
        load("interactions", path)
    assert [r.row for r in refused.value.result.first_rejects] == [1300]
    assert count(engine, Interaction) == 0
    result = load("interactions", path, skip_invalid=True)
    assert (result.rows_written, result.rows_rejected) == (1499, 1)


@pytest.mark.usefixtures("bank")
def test_parquet_input_gives_the_same_rows_as_csv(
    engine: Engine, load: Load, write: Write, tmp_path: Path
) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "product_id": ["p1", "p2"],
            "event_type": ["purchase", "view"],
            "occurred_at": pd.to_datetime(["2025-04-02T10:00:00Z", "2025-04-03T11:00:00Z"]),
            "value": [500.0, None],
            "channel": ["app", None],
        }
    )
    frame.to_parquet(tmp_path / "events.parquet")
    result = load("interactions", tmp_path / "events.parquet")
    assert (result.rows_written, result.holdings_written) == (2, 1)
    as_csv = write(
        "events.csv",
        "customer_id,product_id,event_type,occurred_at,value,channel\n"
        "c1,p1,purchase,2025-04-02T10:00:00Z,500,app\nc2,p2,view,2025-04-03T11:00:00Z,,\n",
    )
    assert load("interactions", as_csv).rows_unchanged == 2  # same content hash


def test_parquet_products_with_list_tags(engine: Engine, load: Load, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "product_id": ["p1"],
            "name": ["Easy Saver"],
            "category": ["deposit"],
            "risk_level": ["R1"],
            "tags": [["savings", "liquid"]],
        }
    )
    frame.to_parquet(tmp_path / "products.parquet")
    load("products", tmp_path / "products.parquet")
    with engine.connect() as conn:
        assert conn.execute(select(Product.tags)).scalar_one() == ["savings", "liquid"]


def test_missing_required_column_refuses_the_file(engine: Engine, load: Load, write: Write) -> None:
    with pytest.raises(SourceError, match=r"missing required column.*risk_level"):
        load("products", write("products.csv", "product_id,name,category\np1,A,deposit\n"))
    assert count(engine, Product) == 0


def test_every_import_is_recorded(engine: Engine, load: Load, write: Write) -> None:
    path = write("customers.csv", CUSTOMERS_CSV)
    result = load("customers", path)
    with engine.connect() as conn:
        run = conn.execute(select(ImportRun)).one()
    assert (run.kind, run.source, run.source_sha256) == ("customers", str(path), result.sha256)
    assert (run.rows_read, run.rows_written, run.status) == (3, 3, "succeeded")
    assert run.finished_at is not None


def test_duplicate_customer_in_a_later_chunk_is_caught(load: Load, write: Write) -> None:
    rows = [f"k{i}" for i in range(1, 1201)]
    rows[1099] = "k3"  # row 1100 repeats row 3, in the second chunk
    path = write("customers.csv", "customer_id\n" + "\n".join(rows) + "\n")
    with pytest.raises(InvalidRowsError) as refused:
        load("customers", path)
    assert [(r.row, r.reason) for r in refused.value.result.first_rejects] == [
        (1100, "duplicate customer_id 'k3' (first at row 3)")
    ]
