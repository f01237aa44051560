"""A synthetic bank: the three import-contract tables, streamed or as pandas frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from app.synth.affinity import content_table
from app.synth.catalogue import Catalogue, build_catalogue
from app.synth.config import SynthConfig, default_end_date
from app.synth.customers import (
    LIFECYCLES,
    Population,
    customer_id_array,
    customer_table,
    draw_population,
)
from app.synth.events import EventModel

CUSTOMER_ROWS_PER_TABLE = 250_000


@dataclass(frozen=True)
class Truth:
    """What generated a bank, never written to its files: for tests and model checks.

    Arrays are aligned with the rows of ``Bank.customers`` and ``Bank.products``.
    """

    taste_group: npt.NDArray[np.int8]
    lifecycle: npt.NDArray[np.str_]
    risk_tolerance: npt.NDArray[np.int8]
    customer_latent: npt.NDArray[np.float32]
    product_latent: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Bank:
    """Customers, products and interactions as frames with import-contract columns.

    Products carry ``tags`` as lists; timestamps are timezone-aware UTC; ``launch_date`` is a
    date at midnight (naive).
    """

    customers: pd.DataFrame
    products: pd.DataFrame
    interactions: pd.DataFrame
    truth: Truth


class BankStream:
    """A bank drawn once, whose tables are produced lazily in bounded pieces.

    Customers and catalogue live in memory (small per customer); interactions are produced one
    time window at a time, already in time order.
    """

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.catalogue: Catalogue = build_catalogue(config)
        content = content_table(self.catalogue)
        self.population: Population = draw_population(config, self.catalogue, content)
        self._customer_ids = customer_id_array(config.n_customers)
        self._events = EventModel.prepare(
            config, self.catalogue, self.population, content, self._customer_ids
        )

    @property
    def products(self) -> pa.Table:
        """The product catalogue in file form (tags ``|``-separated)."""
        return self.catalogue.table

    def customers(self) -> Iterator[pa.Table]:
        """Customers in file form, in ID order, a bounded number of rows per table."""
        n = len(self.population)
        for lo in range(0, n, CUSTOMER_ROWS_PER_TABLE):
            hi = min(n, lo + CUSTOMER_ROWS_PER_TABLE)
            yield customer_table(self.population, self._customer_ids, lo, hi)

    def interactions(self) -> Iterator[pa.Table]:
        """The event log in file form, time-ordered, one table per time window."""
        return self._events.tables()

    def truth(self) -> Truth:
        """The hidden traits behind the data."""
        return Truth(
            taste_group=self.population.taste_group,
            lifecycle=np.array(LIFECYCLES)[self.population.lifecycle],
            risk_tolerance=self.population.risk_tolerance,
            customer_latent=self.population.latent,
            product_latent=self.catalogue.latent,
        )


def _frame(tables: list[pa.Table]) -> pd.DataFrame:
    frame: pd.DataFrame = pa.concat_tables(tables).to_pandas(date_as_object=False)
    return frame


def generate_bank(
    n_customers: int,
    seed: int = 0,
    *,
    months: int = 18,
    end_date: dt.date | None = None,
    events_per_customer: float = 20.0,
) -> Bank:
    """Generate a synthetic bank in memory (the same data ``finrec generate`` writes).

    The log covers ``months`` months before ``end_date`` (default: today in UTC). Equal
    arguments give equal frames; a bad argument raises ``ValueError``.
    """
    config = SynthConfig(
        n_customers=n_customers,
        seed=seed,
        months=months,
        end_date=end_date or default_end_date(),
        events_per_customer=events_per_customer,
    )
    return bank_from_stream(BankStream(config))


def bank_from_stream(stream: BankStream) -> Bank:
    """Collect a stream into frames (tags become lists)."""
    products = _frame([stream.products])
    products["tags"] = [tags.split("|") if tags else [] for tags in products["tags"]]
    return Bank(
        customers=_frame(list(stream.customers())),
        products=products,
        interactions=_frame(list(stream.interactions())),
        truth=stream.truth(),
    )
