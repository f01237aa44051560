"""``finrec keys``: create prints only the key, list shows no secret, revoke takes it away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.cli._common import EXIT_INVALID_DATA, EXIT_USAGE
from app.db.models import ApiKey
from app.services import keys

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINREC_DATABASE_URL", database_url)


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["keys", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("env")
def test_create_prints_only_the_key_and_stores_only_a_hash(
    session_factory: sessionmaker[Session],
) -> None:
    code, out, err = run(
        "create", "--name", "mobile", "--scope", "recommendations:read", "--scope", "events:write"
    )
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("frk_")
    parts = keys.split_token(token)
    assert parts is not None
    key_id, secret = parts
    assert key_id in err and "cannot be shown again" in err
    with session_factory() as session:
        row = session.scalars(select(ApiKey)).one()
        assert (row.id, row.name, row.scopes) == (
            key_id,
            "mobile",
            "recommendations:read events:write",
        )
        stored = " ".join(str(v) for v in (row.id, row.name, row.scopes, row.salt, row.hash))
        assert secret not in stored and token not in stored
        principal = keys.verify_token(session, token)
    assert principal is not None and principal.scopes == {"recommendations:read", "events:write"}


@pytest.mark.usefixtures("env")
def test_list_shows_keys_without_secrets_and_revoke_ends_one(
    session_factory: sessionmaker[Session],
) -> None:
    token = run("create", "--name", "ops", "--scope", "admin")[1].strip()
    key_id = token[4:16]
    code, out, _ = run("list", "--json")
    assert code == 0
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert listed["key_id"] == key_id and listed["scopes"] == ["admin"]
    assert listed["revoked_at"] is None
    assert token[17:] not in out
    with session_factory() as session:
        row = session.get(ApiKey, key_id)
        assert row is not None and row.hash not in out and row.salt not in out

    code, _, err = run("revoke", key_id)
    assert code == 0 and key_id in err and "FINREC_AUTH_CACHE_TTL_SECONDS" in err
    with session_factory() as session:
        assert keys.verify_token(session, token) is None
    assert json.loads(run("list", "--json")[1])["revoked_at"] is not None
    assert run("list", "--json", "--active")[1] == ""
    code, out, _ = run("list")
    assert code == 0 and key_id in out and "ops" in out


@pytest.mark.usefixtures("env")
def test_replace_revokes_the_old_key_of_that_name(session_factory: sessionmaker[Session]) -> None:
    first = run("create", "--name", "demo", "--scope", "admin")[1].strip()
    code, out, err = run("create", "--name", "demo", "--scope", "admin", "--replace")
    assert code == 0 and "revoked" in err
    second = out.strip()
    with session_factory() as session:
        assert keys.verify_token(session, first) is None
        assert keys.verify_token(session, second) is not None
        assert len(keys.find_active(session, "demo")) == 1


@pytest.mark.usefixtures("env")
def test_refusals_have_clear_messages_and_exit_codes() -> None:
    code, out, err = run("create", "--name", "x", "--scope", "root")
    assert code == EXIT_USAGE and out == "" and "unknown scope" in err
    code, out, err = run("create", "--name", "  ", "--scope", "admin")
    assert code == EXIT_USAGE and out == ""
    code, _, err = run("revoke", "0123456789ab")
    assert code == EXIT_INVALID_DATA and "no key" in err


def test_a_missing_table_is_a_clear_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINREC_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    code, out, err = run("list")
    assert code == 1 and out == "" and "finrec db upgrade" in err
