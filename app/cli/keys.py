"""``finrec keys``: create, list and revoke API keys.

``create`` prints only the new key on stdout, so scripts can write
``KEY=$(finrec keys create --name demo --scope admin)``; everything else goes to stderr. The key
is shown once: the database keeps only a salted hash of its secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from app.cli._common import (
    EXIT_FAILURE,
    EXIT_INVALID_DATA,
    EXIT_USAGE,
    console,
    err_console,
    load_settings,
    run_in_session,
)
from app.services import keys
from app.services.errors import DomainError, NotFoundError

keys_app = typer.Typer(
    help="API keys: create (shown once), list (no secrets) and revoke.", no_args_is_help=True
)

T = TypeVar("T")


def _exit_code(exc: DomainError) -> int:
    if isinstance(exc, keys.InvalidKeyRequest):
        return EXIT_USAGE
    if isinstance(exc, NotFoundError):
        return EXIT_INVALID_DATA
    return EXIT_FAILURE


def _run(action: Callable[[Session], T]) -> T:
    return run_in_session(action, _exit_code)


def _revalidation_note() -> str:
    ttl = load_settings().auth_cache_ttl_seconds
    return f"running servers stop accepting it within {ttl:g} s (FINREC_AUTH_CACHE_TTL_SECONDS)"


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key (shown in logs).")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope", help=f"Repeat for several: {', '.join(keys.SCOPES)} (admin implies all)."
        ),
    ],
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Revoke active keys with the same name first (reruns)."),
    ] = False,
) -> None:
    """Create a key and print it (stdout, once); its id and scopes go to stderr."""

    def action(session: Session) -> tuple[keys.KeyInfo, str, list[str]]:
        revoked = []
        if replace:
            keys.normalise_scopes(scope)  # refuse a bad request before revoking anything
            for old in keys.find_active(session, name.strip()):
                keys.revoke_key(session, old.key_id)
                revoked.append(old.key_id)
        info, token = keys.create_key(session, name, scope)
        return info, token, revoked

    info, token, revoked = _run(action)
    for key_id in revoked:
        err_console.print(f"revoked {key_id} ({_revalidation_note()})", highlight=False)
    err_console.print(
        f"created key {info.key_id} '{info.name}' with {' '.join(info.scopes)}; "
        "store it now, it cannot be shown again",
        highlight=False,
    )
    typer.echo(token)


@keys_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    active: Annotated[bool, typer.Option("--active", help="Leave out revoked keys.")] = False,
) -> None:
    """List keys: id, name, scopes and dates (never a secret or hash)."""
    rows = _run(lambda session: keys.list_keys(session, include_revoked=not active))
    if as_json:
        for k in rows:
            record = {
                "key_id": k.key_id,
                "name": k.name,
                "scopes": list(k.scopes),
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            }
            typer.echo(json.dumps(record))
        return
    table = Table("key id", "name", "scopes", "created", "revoked", "last used")
    for k in rows:
        table.add_row(
            k.key_id,
            k.name,
            " ".join(k.scopes),
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id from `finrec keys list`.")],
) -> None:
    """Revoke a key; it stops working on every server within the auth cache TTL."""
    info = _run(lambda session: keys.revoke_key(session, key_id))
    err_console.print(
        f"revoked {info.key_id} '{info.name}'; {_revalidation_note()}", highlight=False
    )


def register(cli: typer.Typer) -> None:
    cli.add_typer(keys_app, name="keys")
