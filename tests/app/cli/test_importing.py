"""``finrec import``: exit codes, the report on stderr, and an unchanged database on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from app.cli import cli
from app.cli._common import EXIT_INVALID_DATA
from app.db.models import Interaction
from tests.app.jobs.conftest import CUSTOMERS_CSV, INTERACTIONS_CSV, PRODUCTS_CSV


@pytest.fixture
def invoke(database_url: str) -> CliRunner:
    return CliRunner(env={"FINREC_DATABASE_URL": database_url, "FINREC_IMPORT_CHUNK_ROWS": "1000"})


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["import", *args])
    # Rich wraps long lines when it is not writing to a terminal; compare words, not layout.
    return result.exit_code, " ".join((result.output + getattr(result, "stderr", "")).split())


def interactions_in(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Interaction)).scalar_one())


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, text in (
        ("customers", CUSTOMERS_CSV),
        ("products", PRODUCTS_CSV),
        ("interactions", INTERACTIONS_CSV),
    ):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def test_import_all_three_kinds_then_repeat(
    invoke: CliRunner, files: dict[str, Path], engine: Engine
) -> None:
    for kind in ("customers", "products", "interactions"):
        code, output = run(invoke, kind, str(files[kind]))
        assert code == 0, output
        assert f"{kind}: succeeded" in output
    code, output = run(invoke, "interactions", str(files["interactions"]))
    assert code == 0 and "written 0, unchanged 5" in output
    assert interactions_in(engine) == 5


def test_malformed_row_exits_non_zero_naming_it_and_changes_nothing(
    invoke: CliRunner, files: dict[str, Path], engine: Engine, tmp_path: Path
) -> None:
    run(invoke, "customers", str(files["customers"]))
    run(invoke, "products", str(files["products"]))
    bad = tmp_path / "bad.csv"
    bad.write_text(INTERACTIONS_CSV.replace("2025-04-02T10:00:00Z", "not-a-time"))
    code, output = run(invoke, "interactions", str(bad))
    assert code == EXIT_INVALID_DATA
    assert "row 2: occurred_at 'not-a-time'" in output
    assert "nothing was imported" in output
    assert interactions_in(engine) == 0


def test_skip_invalid_writes_rejects_and_exits_zero(
    invoke: CliRunner, files: dict[str, Path], engine: Engine, tmp_path: Path
) -> None:
    run(invoke, "customers", str(files["customers"]))
    run(invoke, "products", str(files["products"]))
    bad = tmp_path / "bad.csv"
    bad.write_text(INTERACTIONS_CSV.replace("e4,c2", "e4,c404"))
    rejects = tmp_path / "out" / "rejected.csv"
    rejects.parent.mkdir()
    code, output = run(
        invoke, "interactions", str(bad), "--skip-invalid", "--rejects", str(rejects)
    )
    assert code == 0, output
    assert "partial" in output and "1 rejected rows written to" in output
    assert "c404" in rejects.read_text()
    assert interactions_in(engine) == 4


def test_file_problems_exit_with_the_invalid_data_code(invoke: CliRunner, tmp_path: Path) -> None:
    headerless = tmp_path / "events.csv"
    headerless.write_text("customer_id,product_id\nc1,p1\n")
    code, output = run(invoke, "interactions", str(headerless))
    assert code == EXIT_INVALID_DATA
    assert "missing required column(s) for interactions: event_type, occurred_at" in output
