"""``finrec campaigns``: create, list and end, with clear refusals and exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.db.models import Campaign, Product

runner = CliRunner()


@pytest.fixture
def env(
    database_url: str, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINREC_DATABASE_URL", database_url)
    with session_factory() as session:
        session.add(Product(product_id="P01", name="Saver", category="deposit", risk_level="R1"))
        session.commit()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["campaigns", *args])
    return result.exit_code, result.output


def run_json(*args: str) -> dict[str, Any]:
    """A ``--json`` command's answer, read from stdout alone (notes and logs go to stderr)."""
    result = runner.invoke(cli, ["campaigns", *args, "--json"])
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def said(out: str) -> str:
    """The output as one line (the console wraps long messages)."""
    return " ".join(out.split())


@pytest.mark.usefixtures("env")
def test_create_list_and_end(session_factory: sessionmaker[Session]) -> None:
    created = run_json(
        "create", "--product", "P01", "--name", "spring", "--pin", "2", "--boost", "0.5",
        "--placement", "home", "--ends", "2099-01-01",
    )  # fmt: skip
    assert (created["product_id"], created["pin_rank"], created["status"]) == ("P01", 2, "live")
    assert created["ends_at"].startswith("2099-01-01T00:00:00")  # no zone given: read as UTC
    code, out = run("create", "--product", "P01", "--name", "autumn", "--boost", "1")
    assert code == 0 and "FINREC_CATALOG_REFRESH_SECONDS" in said(out)

    code, out = run("list", "--active", "--placement", "home")
    assert code == 0 and "spring" in out and "live" in out

    code, out = run("end", str(created["id"]))
    assert code == 0 and "(ended)" in out
    assert [c["name"] for c in run_json("list", "--active")["data"]] == ["autumn"]
    with session_factory() as session:  # ended, not deleted
        assert session.get(Campaign, created["id"]) is not None


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["create", "--product", "P01", "--name", "x"], 2, "a boost above 0, a pin_rank"),
        (["create", "--product", "P01", "--name", "x", "--pin", "51"], 2, "pin_rank"),
        (["create", "--product", "P01", "--name", "x", "--boost", "1", "--ends", "soon"], 2, "ISO"),
        (["create", "--product", "P99", "--name", "x", "--boost", "1"], 3, "no product"),
        (
            ["create", "--product", "P01", "--name", "x", "--boost", "1", "--ends", "2001-01-01"],
            2,
            "in the past",
        ),
        (["end", "42"], 3, "no campaign with id 42"),
    ],
)
def test_refusals_exit_non_zero(args: list[str], code: int, message: str) -> None:
    got, out = run(*args)
    assert got == code, out
    assert message in said(out) and "Traceback" not in out


@pytest.mark.usefixtures("env")
def test_ending_twice_is_refused() -> None:
    campaign_id = str(run_json("create", "--product", "P01", "--name", "x", "--boost", "1")["id"])
    assert run("end", campaign_id)[0] == 0
    code, out = run("end", campaign_id)
    assert code == 1 and "cannot change" in said(out)


@pytest.mark.usefixtures("env")
def test_empty_list_says_how_to_start() -> None:
    assert run("list") == (0, "no campaigns; create one with `finrec campaigns create`\n")
