"""Validated import of customers, products and interactions from CSV or Parquet files.

The entry point is :func:`run_import`; the column contract, validation rules and exit codes are
documented in ``docs/import.md``.
"""

from app.jobs.importer.contract import CONTRACTS, ImportKind
from app.jobs.importer.errors import ImportRefused, InvalidRowsError, SourceError
from app.jobs.importer.report import ImportResult, Reject
from app.jobs.importer.runner import ImportOptions, default_rejects_path, run_import

__all__ = [
    "CONTRACTS",
    "ImportKind",
    "ImportOptions",
    "ImportRefused",
    "ImportResult",
    "InvalidRowsError",
    "Reject",
    "SourceError",
    "default_rejects_path",
    "run_import",
]
