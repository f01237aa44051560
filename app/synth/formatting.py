"""Fast text columns: fixed-width IDs and ISO-8601 timestamps built as byte matrices.

Formatting millions of values one by one (or through Arrow's strftime) costs microseconds per
value; writing the digits with numpy into a fixed-width byte matrix and handing its buffer to
Arrow as a string column costs a few nanoseconds.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from app.synth.config import SECONDS_PER_DAY

TIMESTAMP = pa.timestamp("s", tz="UTC")
_PAIRS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], np.uint8)
# The four ASCII digits of 0000..9999, one uint32 each, so a gather moves four bytes at once.
_QUADS = (
    np.array([[48 + i // 1000, 48 + i // 100 % 10, 48 + i // 10 % 10, 48 + i % 10]
              for i in range(10_000)], np.uint8)
    .view(np.uint32)
    .ravel()
)  # fmt: skip


def _digits(values: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.uint8]:
    """Zero-padded decimal digits of non-negative ``values`` as an (n, width) byte matrix."""
    n = len(values)
    out = np.empty((n, width), np.uint8)
    small = n == 0 or int(values.max()) < 2**32
    rest = values.astype(np.uint32 if small else np.int64)
    position = width
    while position >= 4:
        rest, quad = np.divmod(rest, 10_000)
        out[:, position - 4 : position] = _QUADS[quad].view(np.uint8).reshape(n, 4)
        position -= 4
    if position >= 2:
        rest, pair = np.divmod(rest, 100)
        out[:, position - 2 : position] = _PAIRS[pair]
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


def _date_matrix(days: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """``YYYY-MM-DDT`` for each day number."""
    year, month, day = _civil(days)
    matrix = np.empty((len(days), 11), np.uint8)
    matrix[:, 0:4] = _digits(year, 4)
    matrix[:, 5:7] = _digits(month, 2)
    matrix[:, 8:10] = _digits(day, 2)
    matrix[:, [4, 7]] = ord("-")
    matrix[:, 10] = ord("T")
    return matrix


@functools.cache
def _clock_matrix() -> npt.NDArray[np.uint8]:
    """``HH:MM:SSZ`` for every second of a day (86,400 rows)."""
    clock = np.arange(SECONDS_PER_DAY, dtype=np.int64)
    matrix = np.empty((SECONDS_PER_DAY, 9), np.uint8)
    matrix[:, 0:2] = _digits(clock // 3_600, 2)
    matrix[:, 3:5] = _digits(clock // 60 % 60, 2)
    matrix[:, 6:8] = _digits(clock % 60, 2)
    matrix[:, [2, 5]] = ord(":")
    matrix[:, 8] = ord("Z")
    matrix.flags.writeable = False
    return matrix


def iso_timestamps(
    seconds: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_] | None = None
) -> pa.Array:
    """UTC timestamps as ``YYYY-MM-DDTHH:MM:SSZ`` strings; null where ``valid`` is false.

    Event logs cover few distinct days, so each day's text is built once and looked up, as is
    the text of each second of the day.
    """
    seconds = np.asarray(seconds, np.int64)
    if valid is not None:
        seconds = np.where(valid, seconds, 0)
    days, clock = np.divmod(seconds, SECONDS_PER_DAY)
    matrix = np.empty((len(seconds), 20), np.uint8)
    if len(days):
        first, last = int(days.min()), int(days.max())
        if last - first < max(len(days), 1_000):
            table = _date_matrix(np.arange(first, last + 1, dtype=np.int64))
            matrix[:, :11] = table[days - first]
        else:
            matrix[:, :11] = _date_matrix(days)
        matrix[:, 11:] = _clock_matrix()[clock]
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
