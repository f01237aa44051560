"""Vectorised parsing and rule bookkeeping shared by the per-kind validators.

Every rule is a boolean mask over a chunk plus a message; only the (normally few) rejected rows
ever get a Python-level reason string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_EARLIEST = pd.Timestamp("1900-01-01", tz="UTC")
# Unix seconds beyond this are almost certainly milliseconds or garbage.
_MAX_UNIX_SECONDS = 4_102_444_800  # 2100-01-01
_SHOWN_VALUE_CHARS = 60


@dataclass
class Problems:
    """The rules a chunk broke: masks with messages; ``{value}`` in a message shows the value."""

    size: int
    _rules: list[tuple[np.ndarray, str, pd.Series | None, bool]] = field(default_factory=list)

    def add(
        self,
        mask: np.ndarray | pd.Series,
        message: str,
        values: pd.Series | None = None,
        quote: bool = True,
    ) -> None:
        """Flag rows where ``mask`` is true; ``values`` (indexed by position) fill ``{value}``."""
        arr = np.asarray(mask, dtype=bool)
        if arr.any():
            self._rules.append((arr, message, values, quote))

    @property
    def bad(self) -> np.ndarray:
        out = np.zeros(self.size, dtype=bool)
        for mask, _message, _values, _quote in self._rules:
            out |= mask
        return out

    def reasons(self) -> dict[int, str]:
        """Position -> "reason; reason" for every flagged row."""
        found: dict[int, list[str]] = {}
        for mask, message, values, quote in self._rules:
            for pos in np.flatnonzero(mask).tolist():
                text = message
                if values is not None and "{value}" in message:
                    value = values.iloc[pos]
                    text = message.replace("{value}", _show(value) if quote else str(value))
                found.setdefault(pos, []).append(text)
        return {pos: "; ".join(texts) for pos, texts in found.items()}


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[: _SHOWN_VALUE_CHARS - 4] + "...'"


def text(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as trimmed strings with blanks as missing; an absent column is all missing."""
    if column not in frame.columns:
        return pd.Series(pd.array([None] * len(frame), dtype="str"), index=frame.index)
    series = frame[column]
    if not pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        series = series.astype("str")
    series = series.str.strip()
    return series.where(series != "")


def require(problems: Problems, values: pd.Series, column: str) -> None:
    problems.add(values.isna().to_numpy(), f"{column} is required")


def max_length(problems: Problems, values: pd.Series, column: str, limit: int) -> None:
    too_long = (values.str.len() > limit).fillna(False).to_numpy(dtype=bool)
    problems.add(too_long, f"{column} is longer than {limit} characters", values)


def one_of(
    problems: Problems, values: pd.Series, column: str, allowed: tuple[str, ...] | list[str]
) -> None:
    bad = (values.notna() & ~values.isin(list(allowed))).to_numpy(dtype=bool)
    problems.add(bad, f"{column} {{value}} is not one of {', '.join(allowed)}", values)


def timestamps(problems: Problems, raw: pd.Series, column: str, latest: datetime) -> pd.Series:
    """Parse ISO-8601 strings or unix seconds to UTC; flag unparseable, implausible or future."""
    shown = raw.astype("str") if raw.dtype != object else raw
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = pd.to_datetime(raw, utc=True)
        unparseable = np.zeros(len(raw), dtype=bool)
    else:
        if pd.api.types.is_numeric_dtype(raw.dtype):
            seconds = pd.to_numeric(raw, errors="coerce").astype("float64")
            strings = pd.Series(pd.array([None] * len(raw), dtype="str"), index=raw.index)
        else:
            strings = text(pd.DataFrame({column: raw}), column)
            looks_numeric = strings.str.fullmatch(r"-?\d+(\.\d+)?").fillna(False).astype(bool)
            seconds = pd.to_numeric(strings.where(looks_numeric), errors="coerce")
            strings = strings.where(~looks_numeric)
        in_range = seconds.abs() <= _MAX_UNIX_SECONDS
        from_seconds = pd.to_datetime(
            seconds.where(in_range).mul(1_000_000).round(), unit="us", utc=True
        )
        from_text = pd.to_datetime(strings, format="ISO8601", utc=True, errors="coerce")
        parsed = from_text.where(from_text.notna(), from_seconds)
        present = (strings.notna() | seconds.notna()).to_numpy(dtype=bool)
        unparseable = present & parsed.isna().to_numpy(dtype=bool)
        problems.add(
            unparseable,
            f"{column} {{value}} is not an ISO-8601 timestamp or unix seconds",
            shown,
        )
    parsed = parsed.astype("datetime64[us, UTC]")
    problems.add(
        (parsed > pd.Timestamp(latest)).fillna(False).to_numpy(dtype=bool),
        f"{column} {{value}} is in the future",
        shown,
    )
    problems.add(
        (parsed < _EARLIEST).fillna(False).to_numpy(dtype=bool),
        f"{column} {{value}} is before 1900",
        shown,
    )
    return parsed


def dates(problems: Problems, raw: pd.Series, column: str) -> pd.Series:
    """Parse calendar dates (a time part, if any, is dropped); flag unparseable ones."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        return pd.to_datetime(raw).dt.date
    if raw.dtype == object and raw.map(lambda v: v is None or hasattr(v, "isoformat")).all():
        return pd.to_datetime(raw).dt.date  # Parquet date32 arrives as datetime.date objects
    strings = text(pd.DataFrame({column: raw}), column)
    parsed = pd.to_datetime(strings, format="ISO8601", errors="coerce", utc=True)
    problems.add(
        (strings.notna() & parsed.isna()).to_numpy(dtype=bool),
        f"{column} {{value}} is not an ISO-8601 date",
        strings,
    )
    problems.add(
        (parsed < _EARLIEST).fillna(False).to_numpy(dtype=bool),
        f"{column} {{value}} is before 1900",
        strings,
    )
    return parsed.dt.date


def floats(problems: Problems, raw: pd.Series, column: str) -> pd.Series:
    """Parse finite floats; blanks stay missing."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.astype("float64")
        shown = raw.astype("str")
        present = values.notna()
    else:
        strings = text(pd.DataFrame({column: raw}), column)
        values = pd.to_numeric(strings, errors="coerce").astype("float64")
        shown = strings
        present = strings.notna()
    bad = present & ~np.isfinite(values.fillna(0.0)) | (present & values.isna())
    problems.add(bad.to_numpy(dtype=bool), f"{column} {{value}} is not a finite number", shown)
    return values.where(~bad)


def integers(problems: Problems, raw: pd.Series, column: str) -> pd.Series:
    """Parse whole numbers (``34`` or ``34.0``) as nullable Int64."""
    values = floats(problems, raw, column)
    fractional = (values.notna() & (values != values.round())).to_numpy(dtype=bool)
    problems.add(fractional, f"{column} {{value}} is not a whole number", values.astype("str"))
    return values.where(~fractional).round().astype("Int64")


def booleans(problems: Problems, raw: pd.Series, column: str, default: bool) -> pd.Series:
    """Parse true/false (also t/f, yes/no, y/n, 1/0, any case); blanks take ``default``."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype(bool)
    strings = text(pd.DataFrame({column: raw}), column).str.lower()
    is_true = strings.isin(list(_TRUE))
    is_false = strings.isin(list(_FALSE))
    bad = (strings.notna() & ~is_true & ~is_false).to_numpy(dtype=bool)
    problems.add(bad, f"{column} {{value}} is not true or false", strings)
    return pd.Series(np.where(strings.isna(), default, is_true.to_numpy()), index=raw.index)


def duplicates_in_chunk(problems: Problems, keys: pd.Series, rows: np.ndarray, column: str) -> None:
    """Flag every repeat of a key after its first occurrence in the chunk, naming that row."""
    repeat = (keys.duplicated(keep="first") & keys.notna()).to_numpy(dtype=bool)
    if not repeat.any():
        return
    first_pos = pd.Series(np.arange(len(keys)), index=keys.to_numpy())
    first_pos = first_pos[~first_pos.index.duplicated(keep="first")]
    where = np.flatnonzero(repeat)
    first_rows = rows[first_pos.loc[keys.iloc[where].to_numpy()].to_numpy()]
    shown = pd.Series(
        [f"{k!r} (first at row {r})" for k, r in zip(keys.iloc[where], first_rows, strict=True)],
        index=where,
    ).reindex(range(len(keys)))
    problems.add(repeat, f"duplicate {column} {{value}}", shown, quote=False)
