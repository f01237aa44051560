"""``finrec generate``: files written, clear refusals for bad arguments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from app.cli import generate

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    generate.register(app)

    @app.callback()
    def root() -> None:
        """Keeps ``generate`` a named subcommand, as on the real command line."""

    return app


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(_app(), ["generate", *args])
    return result.exit_code, result.output


def test_writes_the_three_files(tmp_path: Path) -> None:
    out = tmp_path / "bank"
    code, output = _run(
        "--customers", "200", "--seed", "3", "--out", str(out), "--end-date", "2025-01-31"
    )
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == [
        "customers.csv",
        "interactions.csv",
        "products.csv",
    ]
    assert "interactions.csv" in output
    interactions = pd.read_csv(out / "interactions.csv")
    assert interactions["occurred_at"].max() < "2025-01-31"
    assert interactions["occurred_at"].min() >= "2023-07-31"


def test_months_and_parquet(tmp_path: Path) -> None:
    code, output = _run(
        "--customers", "100", "--out", str(tmp_path), "--format", "parquet", "--months", "3",
        "--end-date", "2024-04-01",
    )  # fmt: skip
    assert code == 0, output
    when = pd.read_parquet(tmp_path / "interactions.parquet")["occurred_at"]
    assert when.min() >= pd.Timestamp("2024-01-01", tz="UTC")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "0"], "--customers"),
        (["--end-date", "31/01/2025"], "YYYY-MM-DD"),
        (["--format", "xlsx"], "--format"),
        (["--months", "0"], "--months"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = _run("--out", str(tmp_path / "bank"), *args)
    assert code == 2
    assert message in output
    assert not (tmp_path / "bank").exists()


def test_out_must_be_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, output = _run("--customers", "10", "--out", str(target))
    assert code == 2
    assert "not a directory" in output


def test_the_root_command_line_offers_generate(tmp_path: Path) -> None:
    from app.cli import cli

    result = runner.invoke(
        cli, ["generate", "--customers", "50", "--out", str(tmp_path), "--end-date", "2025-01-31"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "interactions.csv").exists()
