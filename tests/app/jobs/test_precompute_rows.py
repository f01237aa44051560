"""Batch rows as columns: exact API rounding, and COPY text that reads back as the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from app.jobs.precompute.rows import BatchRows, round_scores


def test_rounding_is_pythons_round_of_the_float32_score() -> None:
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
    raw = bits.view(np.float32)
    raw = raw[np.isfinite(raw)]
    typical = (rng.standard_normal(200_000) * 3).astype(np.float32)
    ties = np.asarray([1 / 128, -3 / 128, 5 / 1024, 0.5e-6, -1e-7, 0.0, -0.0], dtype=np.float32)
    for scores in (raw, typical, ties):
        served = [round(float(x), 6) for x in scores.tolist()]
        ours = round_scores(scores).tolist()
        assert ours == served
        assert [np.signbit(x) for x in ours] == [np.signbit(x) for x in served]


def _parse_copy_text(text: bytes) -> list[tuple[str, str, int, str, float, str]]:
    def unescape(value: str) -> str:
        out, i = [], 0
        while i < len(value):
            if value[i] == "\\":
                out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[value[i + 1]])
                i += 2
            else:
                out.append(value[i])
                i += 1
        return "".join(out)

    rows = []
    for line in text.decode().split("\n")[:-1]:
        b, c, r, p, s, codes = line.split("\t")
        rows.append((unescape(b), unescape(c), int(r), unescape(p), float(s), unescape(codes)))
    return rows


def test_copy_text_reads_back_as_the_rows() -> None:
    rng = np.random.default_rng(5)
    n = 5_000
    customers = [f"C{i:05d}" for i in range(300)] + ["tab\there", "back\\slash", "né\nwline\r"]
    products = [f"P{i}" for i in range(40)] + ["odd\tproduct"]
    codes = ["als", "popular_in_segment", "popular", "a|b", "x\\y"]
    scores = np.concatenate(
        [
            (rng.standard_normal(n - 9) * 50).astype(np.float32),
            np.asarray(
                [0, -0.0, -1e-7, 123456.78, -999999.9, 1 / 128, 123456789.0, -1e11, 10000.5],
                dtype=np.float32,
            ),
        ]
    )
    rows = BatchRows(
        "batch1",
        customers,
        np.sort(rng.integers(0, len(customers), size=n)),
        rng.integers(1, 21, size=n),
        products,
        rng.integers(0, len(products), size=n),
        round_scores(scores),
        codes,
        rng.integers(0, len(codes), size=n),
    )
    expected = list(rows.tuples())
    text = b"".join(rows.copy_text("utf-8", rows_per_part=777))
    parsed = _parse_copy_text(text)
    assert parsed == expected
    assert [np.signbit(r[4]) for r in parsed] == [np.signbit(r[4]) for r in expected]


def test_tuples_round_trip_and_order() -> None:
    tuples = [
        ("b", "C2", 1, "P1", 0.5, "als"),
        ("b", "C1", 1, "P2", -0.25, "popular"),
        ("b", "C1", 2, "P1", 0.125, "als"),
    ]
    rows = BatchRows.from_tuples(tuples)
    assert len(rows) == 3
    assert list(rows.tuples()) == tuples
    order = np.argsort(rows.customer, kind="stable")
    assert [t[1] for t in rows.take(order).tuples()] == ["C2", "C1", "C1"]
    assert len(BatchRows.from_tuples([])) == 0


def test_copy_text_refuses_what_it_cannot_write() -> None:
    one = np.zeros(1, dtype=np.int64)
    huge = BatchRows("b", ["C1"], one, one + 1, ["P1"], one, np.asarray([1e13]), ["als"], one)
    with pytest.raises(ValueError, match="too large"):
        list(huge.copy_text())
    nul = BatchRows("b", ["C\x001"], one, one + 1, ["P1"], one, np.asarray([1.0]), ["als"], one)
    with pytest.raises(ValueError, match="NUL"):
        list(nul.copy_text())
