"""``finrec train`` and ``finrec models``: exit codes, output and registry effects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.cli._common import EXIT_FAILURE, EXIT_INVALID_DATA, EXIT_USAGE
from app.services import registry
from tests.app.jobs.test_training import write_frames_to_db, write_frames_to_files

runner = CliRunner()


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FINREC_DATABASE_URL", database_url)
    monkeypatch.setenv("FINREC_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("USER", "ops-tester")
    return tmp_path / "artifacts"


def _train(*args: str) -> dict[str, object]:
    result = runner.invoke(cli, ["train", "--json", *args])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def test_train_from_files_prints_progress_and_registers(env: Path, tmp_path: Path) -> None:
    data = write_frames_to_files(tmp_path / "data")
    result = runner.invoke(
        cli, ["train", "-a", "popularity", "-p", "shrinkage=2", "--from-files", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert "fitting popularity" in result.stdout
    assert "version" in result.stdout and "popularity-" in result.stdout

    listed = runner.invoke(cli, ["models", "list", "--json"])
    rows = json.loads(listed.stdout)
    assert [r["algorithm"] for r in rows] == ["popularity"]
    assert rows[0]["params"]["shrinkage"] == 2.0
    assert rows[0]["serves"] == []
    assert (env / rows[0]["version"] / "manifest.json").is_file()


def test_activate_rollback_pin_round_trip(
    env: Path, session_factory: sessionmaker[Session]
) -> None:
    write_frames_to_db(session_factory)
    first = _train("-a", "popularity", "--activate")
    second = _train("-a", "popularity", "-p", "by_segment=false")
    assert first["activated"] == "popularity" and second["activated"] is None

    activated = runner.invoke(cli, ["models", "activate", str(second["version"])])
    assert activated.exit_code == 0, activated.output
    assert f"replacing {first['version']}" in activated.stdout

    table = runner.invoke(cli, ["models", "list", "--algorithm", "popularity"])
    assert table.exit_code == 0 and "active" in table.stdout

    assert runner.invoke(cli, ["models", "pin", "popularity"]).exit_code == 0
    pinned = runner.invoke(cli, ["models", "rollback", "popularity"])
    assert pinned.exit_code == EXIT_FAILURE
    assert "pinned" in pinned.stderr
    assert runner.invoke(cli, ["models", "unpin", "popularity"]).exit_code == 0

    rolled = runner.invoke(cli, ["models", "rollback", "popularity"])
    assert rolled.exit_code == 0, rolled.output
    with session_factory() as session:
        assert registry.active_versions(session) == {"popularity": first["version"]}
        activation = registry.get_activation(session, "popularity")
        assert activation.activated_by == "ops-tester"

    shown = runner.invoke(cli, ["models", "show", str(first["version"])])
    assert json.loads(shown.stdout)["serves"] == ["popularity"]


def test_activate_refuses_a_tampered_artifact(
    env: Path, session_factory: sessionmaker[Session]
) -> None:
    write_frames_to_db(session_factory)
    trained = _train("-a", "popularity")
    (Path(str(trained["artifact_path"])) / "model.npz").write_bytes(b"tampered")
    result = runner.invoke(cli, ["models", "activate", str(trained["version"])])
    assert result.exit_code == EXIT_INVALID_DATA
    assert "does not match" in " ".join(result.stderr.split())  # the console may wrap lines
    with session_factory() as session:
        assert registry.active_versions(session) == {}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-a", "popularity", "-p", "factors=8"], EXIT_USAGE, "unknown parameter"),
        (["-a", "popularity", "-p", "signal=sometimes"], EXIT_USAGE, "signal"),
        (["-a", "popularity", "-p", "nonsense"], EXIT_USAGE, "key=value"),
        (["-a", "no-such-model"], EXIT_USAGE, "unknown algorithm"),
        (["-a", "popularity"], EXIT_INVALID_DATA, "import data first"),
    ],
)
def test_train_errors_are_clear(env: Path, args: list[str], code: int, message: str) -> None:
    result = runner.invoke(cli, ["train", *args])
    assert result.exit_code == code
    assert message in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.output
    assert not env.exists() or not any(env.iterdir())


def test_models_commands_on_unknown_names(env: Path) -> None:
    assert "no model versions" in runner.invoke(cli, ["models", "list"]).stdout
    for args in (["show", "nope"], ["activate", "nope"], ["rollback", "als"], ["pin", "als"]):
        result = runner.invoke(cli, ["models", *args])
        assert result.exit_code == EXIT_FAILURE, args
        assert "error:" in result.stderr


@pytest.mark.parametrize("split", ["time", "random"])
def test_evaluate_prints_the_table_and_saves_the_report(
    env: Path, tmp_path: Path, split: str
) -> None:
    data = write_frames_to_files(tmp_path / "data")
    out = tmp_path / "report"
    options = ["--split", split, "--algorithms", "itemknn", "--k", "2,5", "--out", str(out)]
    result = runner.invoke(
        cli, ["evaluate", "--from-files", str(data), *options, "-p", "itemknn.neighbours=5"]
    )
    assert result.exit_code == 0, result.output
    assert "nDCG@5" in result.stdout and "itemknn" in result.stdout
    saved = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in saved["results"]] == ["popularity", "itemknn"]
    assert saved["results"][1]["params"]["neighbours"] == 5
    assert saved["protocol"]["kind"] == split
    assert (out / "report.md").read_text().startswith("### Every model against popularity")
    assert (out / "report.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--k", "ten"], EXIT_USAGE, "comma-separated integers"),
        (["--split", "sideways"], EXIT_USAGE, "time or random"),
        (["--cutoff", "yesterday"], EXIT_USAGE, "ISO date"),
        (["--algorithms", "nope"], EXIT_USAGE, "unknown algorithm"),
        (["--algorithms", "als", "-p", "bpr.factors=2"], EXIT_USAGE, "not evaluated"),
        (["--cutoff", "2099-01-01"], EXIT_INVALID_DATA, "no customer with a test product"),
    ],
)
def test_evaluate_errors_are_clear(
    env: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    data = write_frames_to_files(tmp_path / "data")
    result = runner.invoke(cli, ["evaluate", "--from-files", str(data), *args])
    assert result.exit_code == code, result.output
    assert message in result.stderr.replace("\n", " ")
