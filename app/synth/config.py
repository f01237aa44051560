"""Parameters of a synthetic bank and the time frame its event log covers."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

SECONDS_PER_DAY = 86_400
MAX_CUSTOMERS = 50_000_000
MAX_MONTHS = 120


def default_end_date() -> dt.date:
    """Today in UTC: the log then ends at the last midnight, so no event lies in the future."""
    return dt.datetime.now(dt.UTC).date()


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` calendar months earlier (clamped to month end)."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day.day, last))


def epoch_seconds(day: dt.date) -> int:
    """Midnight UTC of ``day`` as unix seconds."""
    return (day - dt.date(1970, 1, 1)).days * SECONDS_PER_DAY


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Equal configs give byte-identical output.

    The event log covers ``months`` calendar months and ends at midnight UTC at the start of
    ``end_date`` (exclusive), so with the default end date (today) every event is in the past.
    """

    n_customers: int
    seed: int = 0
    months: int = 18
    end_date: dt.date = field(default_factory=default_end_date)
    events_per_customer: float = 20.0

    def __post_init__(self) -> None:
        if not 1 <= self.n_customers <= MAX_CUSTOMERS:
            raise ValueError(
                f"number of customers must be between 1 and {MAX_CUSTOMERS:,}, "
                f"got {self.n_customers}"
            )
        if not 1 <= self.months <= MAX_MONTHS:
            raise ValueError(f"months must be between 1 and {MAX_MONTHS}, got {self.months}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative integer below 2**63, got {self.seed}")
        if not 0.5 <= self.events_per_customer <= 500:
            raise ValueError(
                f"events per customer must be between 0.5 and 500, got {self.events_per_customer}"
            )
        if self.end_date.year < 1980 or self.end_date.year > 9000:
            raise ValueError(f"end date {self.end_date} is out of range (1980..9000)")

    @property
    def start_date(self) -> dt.date:
        """First day of the event log."""
        return months_before(self.end_date, self.months)

    @property
    def start_s(self) -> int:
        """Start of the log as unix seconds (inclusive)."""
        return epoch_seconds(self.start_date)

    @property
    def end_s(self) -> int:
        """End of the log as unix seconds (exclusive)."""
        return epoch_seconds(self.end_date)
