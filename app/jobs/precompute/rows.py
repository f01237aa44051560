"""A chunk's batch rows as columns, and the two forms the database writes take of them.

Rows are ``batch_id, customer_id, rank, product_id, score, reason_codes``. A chunk holds a few
hundred thousand of them but only a few thousand distinct customer IDs, a few hundred product
IDs and a handful of reason-code strings, so the text columns are kept dictionary-encoded (the
distinct values plus an integer code per row) and the numbers as arrays. Nothing here builds a
Python object per row except :meth:`BatchRows.tuples` (SQLite's ``executemany`` needs them);
PostgreSQL's ``COPY`` text is assembled from byte tables with array operations
(:meth:`BatchRows.copy_text`).

Scores are stored already rounded as the API serves them, ``round(float(score32), 6)``. For a
float32 score ``x``, ``x * 1e6`` is exact in float64 (24 + 20 bits), so ``np.round(x, 6)``
(``rint(x * 1e6) / 1e6``, a correctly rounded division) is bit for bit Python's ``round``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

Row = tuple[str, str, int, str, float, str]  # batch_id, customer_id, rank, product_id, score, codes

_SCALE = 1_000_000  # six decimals
_MAX_TEXT_SCORE = 1e12  # larger scores (none in practice) are written by the driver instead
_INT_DIGITS = 13  # enough for |score| < 1e12
_POW10 = 10 ** np.arange(_INT_DIGITS + 6 - 1, -1, -1, dtype=np.int64)


def round_scores(scores: np.ndarray) -> np.ndarray:
    """``round(float(x), 6)`` of each float32 score, exactly, as float64."""
    return np.round(np.asarray(scores, dtype=np.float32).astype(np.float64), 6)


@dataclass(frozen=True)
class BatchRows:
    """Rows in write order, dictionary-encoded: row ``i`` is customer ``customers[customer[i]]``,
    product ``products[product[i]]``, reason codes ``codes[code[i]]``."""

    batch_id: str
    customers: Sequence[str]
    customer: np.ndarray  # int64
    rank: np.ndarray  # int64
    products: Sequence[str]
    product: np.ndarray  # int64
    score: np.ndarray  # float64, already rounded
    codes: Sequence[str]
    code: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.rank.shape[0])

    @classmethod
    def from_tuples(cls, rows: Sequence[Row]) -> BatchRows:
        """From plain row tuples (all of one batch); scores are taken as given."""
        if not rows:
            empty = np.empty(0, dtype=np.int64)
            return cls("", [], empty, empty, [], empty, np.empty(0), [], empty)
        batch_ids, customer, rank, product, score, codes = zip(*rows, strict=True)
        if len(set(batch_ids)) != 1:
            raise ValueError("rows of one chunk belong to one batch")
        columns = [_encode(list(values)) for values in (customer, product, codes)]
        return cls(
            batch_ids[0],
            columns[0][0],
            columns[0][1],
            np.asarray(rank, dtype=np.int64),
            columns[1][0],
            columns[1][1],
            np.asarray(score, dtype=np.float64),
            columns[2][0],
            columns[2][1],
        )

    def take(self, order: np.ndarray) -> BatchRows:
        """The same rows in ``order``."""
        return BatchRows(
            self.batch_id,
            self.customers,
            self.customer[order],
            self.rank[order],
            self.products,
            self.product[order],
            self.score[order],
            self.codes,
            self.code[order],
        )

    def column(self, name: str) -> list[str]:
        """A text column decoded (``customer_id``, ``product_id`` or ``reason_codes``)."""
        values, codes = {
            "customer_id": (self.customers, self.customer),
            "product_id": (self.products, self.product),
            "reason_codes": (self.codes, self.code),
        }[name]
        table = np.empty(len(values), dtype=object)
        table[:] = list(values)
        decoded: list[str] = table[codes].tolist()
        return decoded

    def tuples(self) -> Iterator[Row]:
        """One tuple per row, made as they are consumed (the columns are built in C)."""
        return zip(
            repeat(self.batch_id),
            self.column("customer_id"),
            self.rank.tolist(),
            self.column("product_id"),
            self.score.tolist(),
            self.column("reason_codes"),
            strict=False,
        )

    def copy_text(self, encoding: str = "utf-8", rows_per_part: int = 1 << 16) -> Iterator[bytes]:
        """The rows as PostgreSQL ``COPY ... FROM STDIN`` text (tab-separated, one line each),
        in parts of at most ``rows_per_part`` lines. Raises OverflowError when a score is too
        large for the fixed-point form (the caller then writes the rows through the driver)."""
        score = self.score
        if score.size and not bool(np.all(np.abs(score) < _MAX_TEXT_SCORE)):
            raise OverflowError("score too large for the fixed-point COPY form")
        prefix = _escape(self.batch_id).encode(encoding) + b"\t"
        tables = [
            _byte_table([_escape(v) + "\t" for v in self.customers], encoding),
            _byte_table([f"{r}\t" for r in range(int(self.rank.max(initial=0)) + 1)], encoding),
            _byte_table([_escape(v) + "\t" for v in self.products], encoding),
            _byte_table([_escape(v) + "\n" for v in self.codes], encoding),
        ]
        codes = (self.customer, self.rank, self.product, self.code)
        for start in range(0, len(self), rows_per_part):
            part = slice(start, start + rows_per_part)
            fields = [(t, c[part]) for t, c in zip(tables, codes, strict=True)]
            yield _compose(prefix, fields[:3], self.score[part], fields[3])


def _encode(values: list[str]) -> tuple[list[str], np.ndarray]:
    lookup: dict[str, int] = {}
    codes = np.fromiter(
        (lookup.setdefault(v, len(lookup)) for v in values), dtype=np.int64, count=len(values)
    )
    return list(lookup), codes


def _escape(value: str) -> str:
    """A value as COPY text format needs it (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def _byte_table(values: list[str], encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """``(bytes (m x width) uint8, length per value)`` of the encoded values."""
    encoded = [v.encode(encoding) for v in values]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    width = int(lengths.max(initial=0))
    table = np.frombuffer(b"".join(e.ljust(width, b"\0") for e in encoded), dtype=np.uint8)
    return table.reshape(len(encoded), width), lengths


def _score_bytes(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (rounded) score as fixed-point text with six decimals and a tab, ``-12.345600\\t``
    (the database parses it to the same float64: both are the nearest double to that
    decimal), as a byte matrix and a mask of the bytes that belong to it."""
    n = score.shape[0]
    scaled = np.rint(score * _SCALE)  # exact: the score is an integer number of millionths
    digits = (np.abs(scaled).astype(np.int64)[:, None] // _POW10) % 10
    width = 1 + _INT_DIGITS + 1 + 6 + 1
    out = np.empty((n, width), dtype=np.uint8)
    mask = np.ones((n, width), dtype=bool)
    out[:, 0] = ord("-")
    mask[:, 0] = np.signbit(score)
    out[:, 1 : 1 + _INT_DIGITS] = digits[:, :_INT_DIGITS] + ord("0")
    # Integer digits from the first non-zero one (always the units digit).
    nonzero = digits[:, : _INT_DIGITS - 1] != 0
    started = np.logical_or.accumulate(nonzero, axis=1)
    mask[:, 1:_INT_DIGITS] = started
    out[:, 1 + _INT_DIGITS] = ord(".")
    out[:, 2 + _INT_DIGITS : 8 + _INT_DIGITS] = digits[:, _INT_DIGITS:] + ord("0")
    out[:, -1] = ord("\t")
    return out, mask


def _compose(
    prefix: bytes,
    head: list[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]],
    score: np.ndarray,
    tail: tuple[tuple[np.ndarray, np.ndarray], np.ndarray],
) -> bytes:
    """Lines ``prefix + head fields + score + tail field``: every field is gathered into one
    byte matrix with a mask of the bytes in use, and the masked bytes, row-major, are the
    text."""
    n = score.shape[0]
    score_bytes, score_mask = _score_bytes(score)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for (table, lengths), codes in head:
        parts.append((table[codes], np.arange(table.shape[1]) < lengths[codes][:, None]))
    parts.append((score_bytes, score_mask))
    (table, lengths), codes = tail
    parts.append((table[codes], np.arange(table.shape[1]) < lengths[codes][:, None]))
    fixed = np.frombuffer(prefix, dtype=np.uint8)
    width = fixed.shape[0] + sum(p[0].shape[1] for p in parts)
    out = np.empty((n, width), dtype=np.uint8)
    mask = np.empty((n, width), dtype=bool)
    out[:, : fixed.shape[0]] = fixed
    mask[:, : fixed.shape[0]] = True
    col = fixed.shape[0]
    for values, used in parts:
        w = values.shape[1]
        out[:, col : col + w] = values
        mask[:, col : col + w] = used
        col += w
    return out[mask].tobytes()
