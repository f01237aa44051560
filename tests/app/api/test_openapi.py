"""The committed openapi.yaml matches the app, and operation ids stay stable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.cli.openapi import render_openapi

COMMITTED = Path(__file__).resolve().parents[3] / "openapi.yaml"


@pytest.fixture(scope="module")
def spec_text() -> str:
    return render_openapi()


@pytest.fixture(scope="module")
def spec(spec_text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(spec_text)
    return loaded


def _operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, op)
        for path, item in spec["paths"].items()
        for op in item.values()
        if "operationId" in op
    ]


def test_committed_openapi_has_not_drifted(spec_text: str) -> None:
    assert COMMITTED.read_text(encoding="utf-8") == spec_text, (
        "openapi.yaml is out of date: run `finrec openapi --out openapi.yaml` and commit it"
    )


def test_operation_ids_are_stable_tag_names(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    ids = [op["operationId"] for _, op in operations]
    assert len(ids) == len(set(ids))
    for path, op in operations:
        name = op["operationId"]
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", name), name
        # The prefix is the operation's tag, or the resource it acts on (/v1/<resource>/...).
        resource = path.strip("/").split("/")[1] if path.startswith("/v1/") else path.strip("/")
        assert name.split("-")[0] in {*op["tags"], resource}, name
        assert op.get("description") or op.get("summary"), name


def test_errors_are_documented_as_problems(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for op in item.values():
            for status, response in op["responses"].items():
                if str(status).startswith(("4", "5")):
                    assert "application/problem+json" in response.get("content", {}), (
                        op["operationId"],
                        status,
                    )


def test_cli_writes_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The command's own behaviour, with a stand-in description so the test stays fast.
    monkeypatch.setattr("app.cli.openapi.render_openapi", lambda: "openapi: 3.1.0\n")
    out = tmp_path / "openapi.yaml"
    runner = CliRunner()
    written = runner.invoke(cli, ["openapi", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == "openapi: 3.1.0\n"
    assert runner.invoke(cli, ["openapi", "--out", str(out), "--check"]).exit_code == 0

    out.write_text("openapi: 3.0.0\n", encoding="utf-8")
    drifted = runner.invoke(cli, ["openapi", "--out", str(out), "--check"])
    assert drifted.exit_code == 1
    assert "out of date" in drifted.output
    assert out.read_text(encoding="utf-8") == "openapi: 3.0.0\n"
    missing = runner.invoke(cli, ["openapi", "--out", str(tmp_path / "none.yaml"), "--check"])
    assert missing.exit_code == 1
    assert "cannot read" in missing.output
