"""File-level checks and row numbering: encoding, ragged rows, BOM, chunking."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.jobs.importer import ImportResult, InvalidRowsError, SourceError
from app.jobs.importer.readers import MalformedRowsFound, inspect_source, iter_chunks

Load = Callable[..., ImportResult]
Write = Callable[[str, str], Path]
HEADER = "product_id,name,category,risk_level"


def test_non_utf8_file_is_refused_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_bytes(f"{HEADER}\np1,Saver,deposit,R1\np2,Caf\xe9,deposit,R1\n".encode("latin-1"))
    with pytest.raises(SourceError, match=r"not valid UTF-8 .*data row 2"):
        inspect_source(path)


def test_utf8_bom_and_padded_header_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_bytes("\ufeffproduct_id, name ,category,risk_level\np1,Café,deposit,R1\n".encode())
    info = inspect_source(path)
    assert info.columns == ("product_id", "name", "category", "risk_level")
    [chunk] = list(iter_chunks(info, 1_000))
    assert chunk.frame["name"].tolist() == ["Café"]


def test_chunks_carry_one_based_data_row_numbers(write: Write) -> None:
    lines = "\n".join(f"p{i},N,deposit,R1" for i in range(1, 2501))
    info = inspect_source(write("products.csv", f"{HEADER}\n{lines}\n"))
    chunks = list(iter_chunks(info, 1_000))
    rows = np.concatenate([c.rows for c in chunks])
    assert rows.tolist() == list(range(1, 2501))
    assert chunks[0].frame["product_id"].iloc[0] == "p1"


def test_ragged_rows_stop_the_fast_reader_then_get_exact_numbers(write: Write) -> None:
    info = inspect_source(
        write("p.csv", f"{HEADER}\np1,A,x,R1\np2,B\np3,C,x,R1\np4,D,x,R1,extra\np5,E,x,R1\n")
    )
    with pytest.raises(MalformedRowsFound):
        list(iter_chunks(info, 1_000))
    [chunk] = list(iter_chunks(info, 1_000, malformed=[2, 4]))
    assert chunk.rows.tolist() == [1, 3, 5]
    assert chunk.frame["product_id"].tolist() == ["p1", "p3", "p5"]


def test_ragged_row_is_reported_and_later_rows_keep_their_numbers(load: Load, write: Write) -> None:
    text = f"{HEADER}\np1,A,x,R1\np2,B\np3,C,x,R9\n"
    with pytest.raises(InvalidRowsError) as refused:
        load("products", write("products.csv", text))
    assert [(r.row, r.reason) for r in refused.value.result.first_rejects] == [
        (2, "row has 2 fields; the header has 4"),
        (3, "risk_level 'R9' is not one of R1, R2, R3, R4, R5"),
    ]


def test_empty_file_and_unreadable_parquet_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(SourceError, match="header row is required"):
        inspect_source(tmp_path / "empty.csv")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        inspect_source(tmp_path / "broken.parquet")


def test_parquet_rows_are_numbered_across_batches(tmp_path: Path) -> None:
    pd.DataFrame({"product_id": [f"p{i}" for i in range(2500)]}).to_parquet(tmp_path / "p.parquet")
    info = inspect_source(tmp_path / "p.parquet")
    assert info.total_rows == 2500
    rows = np.concatenate([c.rows for c in iter_chunks(info, 1_000)])
    assert rows[0] == 1 and rows[-1] == 2500 and len(rows) == 2500
