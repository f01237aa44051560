"""``finrec experiments``: the life cycle, clear refusals with exit codes, report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()
ARMS = ["-v", "control:control:50:popularity", "-v", "als:treatment:50:als"]


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINREC_DATABASE_URL", database_url)
    monkeypatch.setenv("USER", "ops-tester")


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["experiments", *args])
    return result.exit_code, result.output


@pytest.mark.usefixtures("env")
def test_life_cycle_and_report(tmp_path: Path) -> None:
    code, out = run("create", "home-ab", *ARMS, "--placement", "home", "--salt", "s", "--json")
    assert code == 0, out
    assert json.loads(out)["variants"][1]["strategy"] == "als"
    assert run("start", "home-ab") == (0, "home-ab: running\n")
    code, out = run("start", "home-ab")
    assert code == 1 and "it is running" in out
    code, out = run("list", "--json")
    assert [e["key"] for e in json.loads(out)["data"]] == ["home-ab"]
    code, out = run("report", "home-ab", "--out", str(tmp_path / "report"))
    assert code == 0, out
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert saved["srm"]["status"] == "insufficient"
    assert (tmp_path / "report" / "results.png").read_bytes().startswith(b"\x89PNG")
    assert run("pause", "home-ab")[0] == 0
    assert run("stop", "home-ab")[0] == 0
    code, out = run("show", "home-ab", "--json")
    assert json.loads(out)["status"] == "stopped"


@pytest.mark.usefixtures("env")
def test_refusals_exit_non_zero(tmp_path: Path) -> None:
    code, out = run("create", "bad", "-v", "a:treatment:1:als", "-v", "b:treatment:1:als")
    assert code == 2 and "exactly one" in out
    code, out = run("create", "bad", "-v", "a:control:1")
    assert code == 2 and "NAME:ROLE:WEIGHT:STRATEGY" in out
    code, out = run("report", "missing")
    assert code == 3 and "no experiment" in out
    definition = tmp_path / "exp.json"
    definition.write_text(json.dumps({"key": "from-file", "variants": []}))
    code, out = run("create", "--file", str(definition))
    assert code == 2 and "variants" in out
