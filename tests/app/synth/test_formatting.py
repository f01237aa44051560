"""Fast text columns agree with the slow, obvious way of formatting."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from app.synth.formatting import TIMESTAMP, csv_ready, iso_timestamps, prefixed_ids


def test_iso_timestamps_match_pandas() -> None:
    rng = np.random.default_rng(1)
    seconds = np.concatenate(
        [
            rng.integers(0, 8_000_000_000, 5_000),
            # leap days, century rules and day boundaries
            [951_782_400, 951_868_799, 4_107_542_400, 1_709_164_800, 0, 86_399],
        ]
    ).astype(np.int64)
    expected = pd.to_datetime(seconds, unit="s").strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    assert iso_timestamps(seconds).to_pylist() == expected


def test_iso_timestamps_keep_nulls() -> None:
    seconds = np.array([0, 86_400], np.int64)
    text = iso_timestamps(seconds, np.array([True, False]))
    assert text.to_pylist() == ["1970-01-01T00:00:00Z", None]


def test_prefixed_ids_are_zero_padded() -> None:
    ids = prefixed_ids("C", np.array([1, 42, 1234567], np.int64), 7)
    assert ids.to_pylist() == ["C0000001", "C0000042", "C1234567"]


def test_csv_ready_formats_only_timestamps() -> None:
    moment = dt.datetime(2024, 2, 29, 13, 5, 9, tzinfo=dt.UTC)
    table = pa.table(
        {"at": pa.array([moment, None], TIMESTAMP), "n": [1, 2]},
    )
    ready = csv_ready(table)
    assert ready.column("at").to_pylist() == ["2024-02-29T13:05:09Z", None]
    assert ready.column("n").to_pylist() == [1, 2]
