"""Small literal files for import tests, and a database that already knows two customers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.jobs.importer import ImportKind, ImportResult, run_import
from app.settings import Settings

CUSTOMERS_CSV = """\
customer_id,risk_class,risk_assessed_at,segment,age,income_band,channel,consent_personalization,\
tenure_years
c1,C3,2025-01-10,mass,34,mid,app,true,4
c2,C5,2025-03-01T09:30:00Z,affluent,58,high,branch,false,12
c3,,,mass,,,web,,
"""

PRODUCTS_CSV = """product_id,name,category,risk_level,status,launch_date,tags,min_amount
p1,Easy Saver,deposit,R1,active,2020-01-01,savings|liquid,100
p2,Global Equity Fund,fund,R4,,2022-06-15,equity|global,
p3,Travel Card,card,R1,suspended,,,
"""

INTERACTIONS_CSV = """event_id,customer_id,product_id,event_type,occurred_at,value,channel
e1,c1,p1,view,2025-04-01T10:00:00Z,,app
e2,c1,p1,purchase,2025-04-02T10:00:00Z,500,app
e3,c1,p1,purchase,2025-03-01T08:00:00Z,250,branch
e4,c2,p2,click,1743500000,,web
e5,c2,p2,hold,2025-02-01,,
"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, import_chunk_rows=1_000)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to a file called ``name`` under the test's folder."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def load(engine: Engine, settings: Settings) -> Callable[..., ImportResult]:
    def _load(kind: str, path: Path, **options: object) -> ImportResult:
        from app.jobs.importer import ImportOptions

        return run_import(engine, settings, ImportKind(kind), path, ImportOptions(**options))  # type: ignore[arg-type]

    return _load


@pytest.fixture
def bank(load: Callable[..., ImportResult], write: Callable[[str, str], Path]) -> None:
    """Customers c1..c3 and products p1..p3 already imported."""
    load("customers", write("customers.csv", CUSTOMERS_CSV))
    load("products", write("products.csv", PRODUCTS_CSV))
