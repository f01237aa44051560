"""Fast text columns: fixed-width IDs and ISO-8601 timestamps built as byte matrices.

Formatting millions of values one by one (or through Arrow's strftime) costs microseconds per
value; writing the digits with numpy into a fixed-width byte matrix and handing its buffer to
Arrow as a string column costs a few nanoseconds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from app.synth.config import SECONDS_PER_DAY

TIMESTAMP = pa.timestamp("s", tz="UTC")
_PAIRS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], np.uint8)


def _digits(values: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.uint8]:
    """Zero-padded decimal digits of non-negative ``values`` as an (n, width) byte matrix."""
    out = np.empty((len(values), width), np.uint8)
    rest = values.astype(np.int64, copy=True)
    position = width
    while position >= 2:
        out[:, position - 2 : position] = _PAIRS[rest % 100]
        rest //= 100
        position -= 2
    if position == 1:
        out[:, 0] = 48 + rest % 10
    return out


def _string_array(matrix: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_] | None) -> pa.Array:
    n, width = matrix.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    validity = None
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.StringArray.from_buffers(
        n,
        pa.py_buffer(offsets),
        pa.py_buffer(np.ascontiguousarray(matrix)),
        validity,
    )


def id_width(largest: int, minimum: int) -> int:
    """Digits needed to write IDs up to ``largest``, at least ``minimum``."""
    return max(minimum, len(str(max(largest, 0))))


def prefixed_ids(prefix: str, numbers: npt.NDArray[np.int64], width: int) -> pa.Array:
    """IDs such as ``C0000042``: an ASCII prefix followed by zero-padded numbers."""
    head = np.frombuffer(prefix.encode("ascii"), np.uint8)
    matrix = np.empty((len(numbers), len(head) + width), np.uint8)
    matrix[:, : len(head)] = head
    matrix[:, len(head) :] = _digits(numbers, width)
    return _string_array(matrix, None)


def _civil(days: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
    """Proleptic Gregorian year, month, day from days since 1970-01-01 (vectorised)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def iso_timestamps(
    seconds: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_] | None = None
) -> pa.Array:
    """UTC timestamps as ``YYYY-MM-DDTHH:MM:SSZ`` strings; null where ``valid`` is false."""
    seconds = np.asarray(seconds, np.int64)
    if valid is not None:
        seconds = np.where(valid, seconds, 0)
    days, clock = np.divmod(seconds, SECONDS_PER_DAY)
    year, month, day = _civil(days)
    matrix = np.empty((len(seconds), 20), np.uint8)
    matrix[:, 0:4] = _digits(year, 4)
    matrix[:, 5:7] = _digits(month, 2)
    matrix[:, 8:10] = _digits(day, 2)
    matrix[:, 11:13] = _digits(clock // 3_600, 2)
    matrix[:, 14:16] = _digits(clock // 60 % 60, 2)
    matrix[:, 17:19] = _digits(clock % 60, 2)
    matrix[:, [4, 7]] = ord("-")
    matrix[:, 10] = ord("T")
    matrix[:, [13, 16]] = ord(":")
    matrix[:, 19] = ord("Z")
    return _string_array(matrix, valid)


def csv_ready(table: pa.Table) -> pa.Table:
    """Replace timestamp columns by their ISO-8601 text, which Arrow's CSV writer formats slowly."""
    for index, column in enumerate(table.columns):
        if pa.types.is_timestamp(column.type):
            seconds = pc.cast(column, TIMESTAMP, safe=False).cast(pa.int64())
            values = pc.fill_null(seconds, 0).to_numpy()
            valid = seconds.is_valid().to_numpy() if seconds.null_count else None
            text = iso_timestamps(values.astype(np.int64), valid)
            table = table.set_column(index, table.field(index).name, text)
    return table
