"""``finrec openapi``: write the API description, or check the committed one is current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from app.cli._common import EXIT_FAILURE, console, fail
from app.settings import Settings


def render_openapi() -> str:
    """The app's OpenAPI description as YAML, independent of the local environment."""
    from app.main import create_app  # the CLI stays importable without building the app

    # Fixed settings: the description must not depend on whoever runs the command.
    app = create_app(Settings(environment="development", docs_enabled=True, _env_file=None))
    spec: dict[str, Any] = app.openapi()
    text: str = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    return text


def openapi(
    out: Path = typer.Option(Path("openapi.yaml"), "--out", help="Where to write the YAML."),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if OUT differs from the app."
    ),
) -> None:
    """Generate openapi.yaml from the app (stable operation ids), or check it for drift."""
    if check:
        try:
            current = out.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {out}: {exc.strerror or exc}")
        if current != render_openapi():
            fail(f"{out} is out of date; run `finrec openapi --out {out}`", EXIT_FAILURE)
        console.print(f"{out} is up to date")
        return
    text = render_openapi()
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)  # never leave a half-written file behind
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"cannot write {out}: {exc.strerror or exc}")
    console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("openapi")(openapi)
