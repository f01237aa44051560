"""The ``finrec`` command line: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from app.cli import campaigns as campaigns_cli
from app.cli import db, openapi, serve
from app.cli import decisions as decisions_cli
from app.cli import evaluate as evaluate_cli
from app.cli import experiments as experiments_cli
from app.cli import generate as generate_cli
from app.cli import importing as importing_cli
from app.cli import keys as keys_cli
from app.cli import models as models_cli
from app.cli import precompute as precompute_cli
from app.cli import train as train_cli

cli = typer.Typer(
    name="finrec",
    help="Recommendation microservice for retail-bank financial products.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

db.register(cli)
openapi.register(cli)
serve.register(cli)
train_cli.register(cli)
models_cli.register(cli)
evaluate_cli.register(cli)
importing_cli.register(cli)
experiments_cli.register(cli)
generate_cli.register(cli)
precompute_cli.register(cli)
campaigns_cli.register(cli)
keys_cli.register(cli)
decisions_cli.register(cli)


def main() -> None:
    """Console-script entry point."""
    cli()
