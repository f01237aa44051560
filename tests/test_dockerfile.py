"""The Dockerfile, read as text: non-root, health-checked, production settings by default.

No Docker engine is needed; the image itself is built by whoever has one.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """``(KEYWORD, arguments)`` pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage(pairs: list[Instruction]) -> list[Instruction]:
    last = max(i for i, (keyword, _) in enumerate(pairs) if keyword == "FROM")
    return pairs[last:]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def args_of(stage: list[Instruction]) -> dict[str, str]:
    found = {}
    for keyword, rest in stage:
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            found[name] = default
    return found


@pytest.fixture(scope="module")
def stage() -> list[Instruction]:
    return final_stage(instructions((ROOT / "Dockerfile").read_text()))


def test_the_build_is_multi_stage() -> None:
    pairs = instructions((ROOT / "Dockerfile").read_text())
    assert sum(keyword == "FROM" for keyword, _ in pairs) >= 2
    assert any(k == "COPY" and r.startswith("--from=") for k, r in final_stage(pairs))


def test_runs_as_a_fixed_non_root_user(stage: list[Instruction]) -> None:
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users, "the runtime stage sets no USER (it would run as root)"
    user = users[-1]
    for name, default in args_of(stage).items():
        user = user.replace(f"${{{name}}}", default).replace(f"${name}", default)
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user!r} must be a fixed non-zero uid"


def test_health_check_calls_healthz_without_curl(stage: list[Instruction]) -> None:
    checks = [rest for keyword, rest in stage if keyword == "HEALTHCHECK"]
    assert len(checks) == 1 and "CMD" in checks[0]
    assert "/healthz" in checks[0]
    assert "curl" not in checks[0] and "wget" not in checks[0]


def test_production_settings_by_default(stage: list[Instruction]) -> None:
    env = env_of(stage)
    assert env["FINREC_ENVIRONMENT"] == "production"
    assert env["FINREC_DOCS_ENABLED"] == "false"
    assert env["FINREC_LOG_JSON"] == "true"
    assert "FINREC_SECRET_KEY" not in env  # a secret never lives in an image
    known = {f"FINREC_{name.upper()}" for name in Settings.model_fields}
    assert {name for name in env if name.startswith("FINREC_")} <= known


def test_data_and_artifacts_are_volumes(stage: list[Instruction]) -> None:
    env = env_of(stage)
    volumes = [path for k, rest in stage if k == "VOLUME" for path in json.loads(rest)]
    database = env["FINREC_DATABASE_URL"].removeprefix("sqlite:///")
    assert any(database.startswith(volume + "/") for volume in volumes)
    assert env["FINREC_ARTIFACT_DIR"] in volumes


def test_serves_on_the_exposed_port(stage: list[Instruction]) -> None:
    exposed = [rest for keyword, rest in stage if keyword == "EXPOSE"]
    entrypoint = [json.loads(rest) for keyword, rest in stage if keyword == "ENTRYPOINT"][-1]
    command = [json.loads(rest) for keyword, rest in stage if keyword == "CMD"][-1]
    argv = entrypoint + command
    assert argv[:2] == ["finrec", "serve"]
    port = argv[argv.index("--port") + 1]
    assert exposed == [port]
    health = next(rest for keyword, rest in stage if keyword == "HEALTHCHECK")
    assert f":{port}/healthz" in health


def test_dockerignore_keeps_secrets_and_state_out_but_the_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns
        )

    for path in (".env", ".git/config", ".venv/bin/python", "var/finrec.db", "tests/conftest.py"):
        assert ignored(path), path
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert not ignored(source), f"{source} is copied into the image but ignored"
