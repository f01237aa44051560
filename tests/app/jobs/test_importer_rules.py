"""Each validation rule names the row and the reason, and refuses the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from app.jobs.importer import ImportResult, InvalidRowsError
from app.jobs.importer.rules import KeyMap
from tests.app.jobs.conftest import CUSTOMERS_CSV, INTERACTIONS_CSV, PRODUCTS_CSV

Load = Callable[..., ImportResult]
Write = Callable[[str, str], Path]

EVENTS_HEADER = INTERACTIONS_CSV.splitlines()[0]
CUSTOMERS_HEADER = CUSTOMERS_CSV.splitlines()[0]
PRODUCTS_HEADER = PRODUCTS_CSV.splitlines()[0]
GOOD_EVENT = "e1,c1,p1,view,2025-04-01T10:00:00Z,,app"


def refused_rows(load: Load, kind: str, path: Path) -> list[tuple[int, str]]:
    with pytest.raises(InvalidRowsError) as refused:
        load(kind, path)
    return [(r.row, r.reason) for r in refused.value.result.first_rejects]


@pytest.mark.usefixtures("bank")
@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ("e2,c9,p1,view,2025-04-01T10:00:00Z,,app", "unknown customer_id 'c9'"),
        ("e2,c1,p9,view,2025-04-01T10:00:00Z,,app", "unknown product_id 'p9'"),
        ("e2,c1,p1,browse,2025-04-01T10:00:00Z,,app", "event_type 'browse' is not one of"),
        ("e2,c1,p1,view,01/04/2025,,app", "occurred_at '01/04/2025' is not an ISO-8601"),
        ("e2,c1,p1,view,2025-02-30,,app", "occurred_at '2025-02-30' is not an ISO-8601"),
        ("e2,c1,p1,view,2999-01-01T00:00:00Z,,app", "occurred_at '2999-01-01T00:00:00Z' is in"),
        ("e2,c1,p1,view,1850-01-01,,app", "is before 1900"),
        ("e2,c1,p1,view,2025-04-01T10:00:00Z,lots,app", "value 'lots' is not a finite number"),
        ("e2,c1,p1,view,2025-04-01T10:00:00Z,inf,app", "value 'inf' is not a finite number"),
        ("e2,,p1,view,2025-04-01T10:00:00Z,,app", "customer_id is required"),
        ("e2,c1,p1,view,,,app", "occurred_at is required"),
        ("e1,c1,p1,click,2025-04-01T11:00:00Z,,app", "duplicate event_id 'e1' (first at row 1)"),
        ("e2,c1,p1,view,2025-04-01T10:00:00Z,," + "x" * 33, "channel is longer than 32"),
    ],
)
def test_interaction_rules(load: Load, write: Write, bad_row: str, reason: str) -> None:
    path = write("events.csv", f"{EVENTS_HEADER}\n{GOOD_EVENT}\n{bad_row}\n")
    rejects = refused_rows(load, "interactions", path)
    assert len(rejects) == 1
    row, message = rejects[0]
    assert row == 2 and reason in message


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ("c4,C6,,mass,30,,,,", "risk_class 'C6' is not one of C1, C2, C3, C4, C5"),
        ("c4,,,mass,-3,,,,", "age '-3' is outside 0..120"),
        ("c4,,,mass,430,,,,", "age '430' is outside 0..120"),
        ("c4,,,mass,33.5,,,,", "age '33.5' is not a whole number"),
        ("c4,,,mass,thirty,,,,", "age 'thirty' is not a finite number"),
        ("c4,,,mass,30,,,maybe,", "consent_personalization 'maybe' is not true or false"),
        ("c4,C2,2999-01-01,mass,30,,,,", "risk_assessed_at '2999-01-01' is in the future"),
        ("c1,C2,,mass,30,,,,", "duplicate customer_id 'c1' (first at row 1)"),
        (",C2,,mass,30,,,,", "customer_id is required"),
    ],
)
def test_customer_rules(load: Load, write: Write, bad_row: str, reason: str) -> None:
    path = write("customers.csv", f"{CUSTOMERS_HEADER}\nc1,C3,,mass,34,,,,\n{bad_row}\n")
    rejects = refused_rows(load, "customers", path)
    assert len(rejects) == 1 and rejects[0][0] == 2 and reason in rejects[0][1]


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ("p4,Bond,fund,R6,,,,", "risk_level 'R6' is not one of R1, R2, R3, R4, R5"),
        ("p4,Bond,fund,R2,launched,,,", "status 'launched' is not one of draft"),
        ("p4,Bond,fund,R2,,next year,,", "launch_date 'next year' is not an ISO-8601 date"),
        ("p4,,fund,R2,,,,", "name is required"),
        ("p1,Again,fund,R2,,,,", "duplicate product_id 'p1' (first at row 1)"),
    ],
)
def test_product_rules(load: Load, write: Write, bad_row: str, reason: str) -> None:
    path = write("products.csv", f"{PRODUCTS_HEADER}\np1,Saver,deposit,R1,,,,\n{bad_row}\n")
    rejects = refused_rows(load, "products", path)
    assert len(rejects) == 1 and rejects[0][0] == 2 and reason in rejects[0][1]


def test_several_problems_in_one_row_are_all_named(load: Load, write: Write) -> None:
    path = write("products.csv", f"{PRODUCTS_HEADER}\np1,,deposit,R9,gone,,,\n")
    [(row, reason)] = refused_rows(load, "products", path)
    assert row == 1
    for part in ("name is required", "risk_level 'R9'", "status 'gone'"):
        assert part in reason


def test_key_map_resolves_plain_and_chunked_columns() -> None:
    keys = KeyMap.from_pairs([("a", 10), ("b", 20)])
    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["a", "x"], [None, "b"]])))
    assert keys.lookup(chunked).tolist() == [10, -1, -1, 20]
    assert keys.lookup(pd.Series(["b", "b"], dtype="str")).tolist() == [20, 20]
    assert KeyMap.from_pairs([]).lookup(pd.Series(["a"], dtype="str")).tolist() == [-1]
