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
        in parts of at most ``rows_per_part`` lines.

        Raises ValueError when a score is too large for the fixed-point form or a value holds a
        NUL character (the caller then writes the rows through the driver)."""
        score = self.score
        if score.size and not bool(np.all(np.abs(score) < _MAX_TEXT_SCORE)):
            raise ValueError("score too large for the fixed-point COPY form")
        batch = _escape(self.batch_id)
        # Each field a table of NUL-padded byte strings: gathered per row, then the NULs dropped.
        tables = [
            _byte_table([f"{batch}\t{_escape(v)}\t" for v in self.customers], encoding),
            _byte_table([f"{r}\t" for r in range(int(self.rank.max(initial=0)) + 1)], encoding),
            _byte_table([_escape(v) + "\t" for v in self.products], encoding),
            _byte_table([_escape(v) + "\n" for v in self.codes], encoding),
        ]
        codes = (self.customer, self.rank, self.product, self.code)
        for start in range(0, len(self), rows_per_part):
            part = slice(start, start + rows_per_part)
            fields = [table[c[part]] for table, c in zip(tables, codes, strict=True)]
            fields.insert(3, _score_bytes(score[part]))
            yield np.concatenate(fields, axis=1).tobytes().translate(None, b"\0")


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


def _byte_table(values: list[str], encoding: str) -> np.ndarray:
    """The encoded values as rows of a uint8 matrix, padded with NUL bytes."""
    encoded = [v.encode(encoding) for v in values]
    width = max(map(len, encoded), default=0)
    if any(b"\0" in e for e in encoded):
        raise ValueError("COPY text cannot hold a NUL character")
    table = np.frombuffer(b"".join(e.ljust(width, b"\0") for e in encoded), dtype=np.uint8)
    return table.reshape(len(encoded), width)


def _words(texts: list[str]) -> np.ndarray:
    """Texts of at most four ASCII characters as little-endian 4-byte words, NUL-padded in
    front (a word viewed as bytes reads in text order)."""
    return np.frombuffer(b"".join(t.encode().rjust(4, b"\0") for t in texts), dtype="<u4")


_FULL4 = _words([f"{i:04d}" for i in range(10_000)])  # 0042
_LEAD4 = _words([str(i) for i in range(10_000)])  # 42, without leading zeros
_POINT2 = _words([f".{i:02d}" for i in range(100)])  # .04
_SIGN = _words(["", "-"])
_TAB = _words(["\t"])[0]


def _score_bytes(score: np.ndarray) -> np.ndarray:
    """Each (rounded) score as fixed-point text with six decimals and a tab, ``-12.345600\\t``
    (the database parses it to the same float64: both are the nearest double to that decimal),
    as rows of a uint8 matrix padded with NUL bytes."""
    n = score.shape[0]
    scaled = np.abs(np.rint(score * _SCALE)).astype(np.int64)  # exact: whole millionths
    whole, frac = np.divmod(scaled, _SCALE)
    groups = max(1, (len(str(int(whole.max(initial=0)))) + 3) // 4)  # 4-digit groups
    words = np.empty((n, groups + 4), dtype="<u4")
    words[:, 0] = _SIGN[np.signbit(score).astype(np.intp)]
    values = [(whole // 10 ** (4 * (groups - 1 - g))) % 10_000 for g in range(groups)]
    if groups == 1:
        words[:, 1] = _LEAD4[values[0]]
    else:
        # The first non-zero group without its leading zeros, the ones before it empty.
        first = np.full(n, groups - 1)
        for g in range(groups - 2, -1, -1):
            first[values[g] != 0] = g
        for g in range(groups):
            words[:, 1 + g] = np.where(
                first < g, _FULL4[values[g]], np.where(first == g, _LEAD4[values[g]], 0)
            )
    words[:, groups + 1] = _POINT2[frac // 10_000]
    words[:, groups + 2] = _FULL4[frac % 10_000]
    words[:, groups + 3] = _TAB
    return words.view(np.uint8)
