"""What an import did: counts, status and the first rejected rows, for people and for audit."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

ROW_COLUMN = "row_number"
REASON_COLUMN = "reject_reason"


@dataclass(frozen=True)
class Reject:
    row: int
    reason: str


@dataclass
class ImportResult:
    """Outcome of one import; ``status`` is succeeded, partial (rows skipped) or refused."""

    kind: str
    source: str
    sha256: str
    rows_read: int = 0
    rows_written: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    holdings_written: int = 0
    status: str = "running"
    seconds: float = 0.0
    rejects_path: Path | None = None
    first_rejects: list[Reject] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.rows_read / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.kind}: {self.status}; read {self.rows_read:,}, written {self.rows_written:,}, "
            f"unchanged {self.rows_unchanged:,}, rejected {self.rows_rejected:,}"
        )
        if self.holdings_written:
            text += f", holdings derived {self.holdings_written:,}"
        return text + f" in {self.seconds:.1f}s ({rate:,.0f} rows/s)"


class RejectSink:
    """Collects rejected rows: counts them, keeps the first few, and streams all to a CSV."""

    def __init__(self, columns: tuple[str, ...], path: Path | None, keep: int = 20) -> None:
        self.columns = columns
        self.path = path
        self.keep = keep
        self.count = 0
        self.first: list[Reject] = []
        self._handle: TextIO | None = None
        self._writer: Any = None

    def add(self, frame: pd.DataFrame, rows: list[int], reasons: list[str]) -> None:
        """Record rejects; ``frame`` holds their original columns, aligned with ``rows``."""
        if not rows:
            return
        self.count += len(rows)
        for row, reason in zip(rows, reasons, strict=True):
            if len(self.first) >= self.keep:
                break
            self.first.append(Reject(row, reason))
        if self.path is None:
            return
        if self._writer is None:
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow([*self.columns, ROW_COLUMN, REASON_COLUMN])
        values = frame.reindex(columns=list(self.columns)).astype(object)
        values = values.where(values.notna(), "")
        for record, row, reason in zip(values.itertuples(index=False), rows, reasons, strict=True):
            self._writer.writerow([*record, row, reason])

    def reset(self) -> None:
        """Forget everything (the import restarts from the first row)."""
        self.close()
        self.count = 0
        self.first = []
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._writer = None
