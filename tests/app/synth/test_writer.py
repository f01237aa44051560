"""Files: byte-identical for a seed, readable back with pandas, never half-written."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from app.synth import Bank, BankStream, SynthConfig, write_bank, write_stream
from app.synth.writer import write_tables
from tests.app.synth.conftest import SMALL

NAMES = ("customers", "products", "interactions")


def _digest(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_arguments_give_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    write_stream(BankStream(SMALL), tmp_path / "a", fmt)  # type: ignore[arg-type]
    write_stream(BankStream(SMALL), tmp_path / "b", fmt)  # type: ignore[arg-type]
    first = _digest(tmp_path / "a")
    assert sorted(first) == sorted(f"{name}.{fmt}" for name in NAMES)
    assert first == _digest(tmp_path / "b")


def test_another_seed_gives_another_bank(tmp_path: Path) -> None:
    other = SynthConfig(SMALL.n_customers, SMALL.seed + 1, end_date=SMALL.end_date)
    write_stream(BankStream(SMALL), tmp_path / "a")
    write_stream(BankStream(other), tmp_path / "b")
    first, second = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert first["interactions.csv"] != second["interactions.csv"]
    assert first["customers.csv"] != second["customers.csv"]


def test_csv_reads_back_as_the_frames(tmp_path: Path, bank: Bank) -> None:
    written = write_stream(BankStream(SMALL), tmp_path)
    assert {w.table: w.rows for w in written} == {
        "customers": len(bank.customers),
        "products": len(bank.products),
        "interactions": len(bank.interactions),
    }
    interactions = pd.read_csv(tmp_path / "interactions.csv", dtype={"channel": "str"})
    when = pd.to_datetime(interactions["occurred_at"], format="ISO8601", utc=True)
    assert (when == bank.interactions["occurred_at"]).all()
    assert (interactions["event_id"] == bank.interactions["event_id"]).all()
    pd.testing.assert_series_equal(interactions["value"], bank.interactions["value"])
    customers = pd.read_csv(tmp_path / "customers.csv")
    assert (customers["customer_id"] == bank.customers["customer_id"]).all()
    assessed = pd.to_datetime(customers["risk_assessed_at"], format="ISO8601", utc=True)
    assert assessed.equals(bank.customers["risk_assessed_at"].astype(assessed.dtype))
    products = pd.read_csv(tmp_path / "products.csv")
    assert products["tags"].str.split("|").tolist() == bank.products["tags"].tolist()
    assert (products["launch_date"] == bank.products["launch_date"].dt.strftime("%Y-%m-%d")).all()


def test_parquet_reads_back_as_the_frames(tmp_path: Path, bank: Bank) -> None:
    write_stream(BankStream(SMALL), tmp_path, "parquet")
    interactions = pd.read_parquet(tmp_path / "interactions.parquet")
    assert interactions["event_id"].equals(bank.interactions["event_id"])
    assert (interactions["occurred_at"] == bank.interactions["occurred_at"]).all()
    customers = pd.read_parquet(tmp_path / "customers.parquet")
    assert customers["risk_class"].equals(bank.customers["risk_class"])


def test_write_bank_matches_the_stream_byte_for_byte(tmp_path: Path, bank: Bank) -> None:
    write_stream(BankStream(SMALL), tmp_path / "stream")
    write_bank(bank, tmp_path / "frames")
    assert _digest(tmp_path / "stream") == _digest(tmp_path / "frames")


def test_values_needing_quotes_are_quoted(tmp_path: Path, bank: Bank) -> None:
    products = bank.products.copy()
    products.loc[0, "name"] = 'Saver, "Plus"'
    write_bank(Bank(bank.customers, products, bank.interactions, bank.truth), tmp_path)
    assert pd.read_csv(tmp_path / "products.csv")["name"][0] == 'Saver, "Plus"'


def test_a_failure_leaves_no_file_behind(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("an earlier export\n")

    def broken() -> Iterator[pa.Table]:
        yield pa.table({"x": [1]})
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_tables(
            tmp_path,
            "csv",
            {"customers": lambda: [pa.table({"x": [2]})], "interactions": broken},
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]
    assert (tmp_path / "customers.csv").read_text() == "an earlier export\n"


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        write_tables(tmp_path, "xlsx", {})  # type: ignore[arg-type]
