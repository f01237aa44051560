"""Import failures the command line turns into clear messages and exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.jobs.importer.report import ImportResult


class ImportRefused(Exception):
    """Base class: the file was refused and nothing was written."""


class SourceError(ImportRefused):
    """The file as a whole cannot be imported (unreadable, not UTF-8, missing columns, ...)."""

    def __init__(self, message: str, sha256: str | None = None) -> None:
        super().__init__(message)
        self.sha256 = sha256


class InvalidRowsError(ImportRefused):
    """Some rows failed validation and ``--skip-invalid`` was not given."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__(
            f"{result.rows_rejected} of {result.rows_read} rows are invalid; nothing was imported"
        )
        self.result = result
