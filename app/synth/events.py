"""The event log: sessions drawn window by window, each walking the view → click → apply →
purchase funnel, plus a snapshot of what long-standing customers already held when the log began.

Windows are consecutive slices of the log; every window has its own random stream and its
events are sorted by time before the next window starts, so the whole log comes out
time-ordered while memory holds one window at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from app.synth.catalogue import Catalogue
from app.synth.config import SECONDS_PER_DAY, SynthConfig
from app.synth.customers import CHANNELS, Population, draw_channels
from app.synth.formatting import TIMESTAMP, id_width, prefixed_ids
from app.synth.funnel import EXPLORE, Funnel, explore_weights

# Within one second, earlier funnel steps sort first.
EVENT_TYPES = ("hold", "view", "click", "apply", "purchase")
HOLD, VIEW, CLICK, APPLY, PURCHASE = range(len(EVENT_TYPES))
_EVENT_STREAM = 3
_HOLD_STREAM = 4
_MONTH = 30.44 * SECONDS_PER_DAY
_WINDOW_EVENTS = 1_500_000
# Share of sessions starting in each hour of the day (UTC), cumulative.
_HOURS = np.cumsum(
    np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4, 5, 5.5, 5.5,
              6, 6, 5.5, 5.5, 5.5, 6, 6.5, 7, 7, 6, 4, 2])
)  # fmt: skip
_HOURS /= _HOURS[-1]


class _Part(NamedTuple):
    """Events as aligned arrays (``channel`` -1 and ``value`` NaN where there is none)."""

    when: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]
    who: npt.NDArray[np.int32]
    what: npt.NDArray[np.intp]
    channel: npt.NDArray[np.int8]
    value: npt.NDArray[np.float64]

    @classmethod
    def of(
        cls,
        when: npt.NDArray[np.int64],
        kind: int,
        who: npt.NDArray[np.int32],
        what: npt.NDArray[np.intp],
        channel: npt.NDArray[np.int8],
        value: npt.NDArray[np.float64] | None = None,
    ) -> _Part:
        n = len(who)
        return cls(
            when,
            np.full(n, kind, np.int8),
            who,
            what,
            channel,
            np.full(n, np.nan) if value is None else value,
        )

    @classmethod
    def concatenate(cls, parts: list[_Part]) -> _Part:
        return cls(
            np.concatenate([p.when for p in parts]),
            np.concatenate([p.kind for p in parts]),
            np.concatenate([p.who for p in parts]),
            np.concatenate([p.what for p in parts]),
            np.concatenate([p.channel for p in parts]),
            np.concatenate([p.value for p in parts]),
        )

    def take(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> _Part:
        return _Part(
            self.when[index],
            self.kind[index],
            self.who[index],
            self.what[index],
            self.channel[index],
            self.value[index],
        )


def _time_order(when: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Stable order by time. Parts are concatenated in funnel order, each in customer order,
    so ties break by funnel step, then customer. Packing (time, position) into one unique
    integer lets a plain sort do it several times faster than a stable argsort."""
    n = len(when)
    position_bits = max(int(n).bit_length(), 1)
    offset = when - when.min() if n else when
    if n and int(offset.max()) < (1 << (62 - position_bits)):
        packed = (offset << position_bits) | np.arange(n, dtype=np.int64)
        packed.sort()
        return packed & ((1 << position_bits) - 1)
    return np.argsort(when, kind="stable").astype(np.int64)


def draw_holds(config: SynthConfig, catalogue: Catalogue, population: Population) -> _Part:
    """What customers who joined before the log began already held at its start."""
    rng = np.random.default_rng([config.seed, _HOLD_STREAM])
    pop, cat = population, catalogue
    start = config.start_s
    before = pop.active_from == start
    before &= pop.tenure_years * 365.25 * SECONDS_PER_DAY > config.end_s - start
    counts = np.where(before, rng.poisson(0.8 + 0.4 * np.minimum(pop.wealth, 3.0)), 0)
    who = np.repeat(np.arange(len(pop), dtype=np.int32), np.minimum(counts, 4))
    slot = rng.integers(0, pop.considered.shape[1], len(who))
    what = pop.considered[who, slot].astype(np.intp)
    above = cat.risk[what] > pop.risk_tolerance[who]
    keep = (cat.available_from[what] <= start) & (start < cat.available_to[what])
    keep &= ~above | (rng.random(len(who)) < 0.1)
    key = np.sort(who[keep].astype(np.int64) * len(cat) + what[keep])
    key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    who, what = (key // len(cat)).astype(np.int32), (key % len(cat)).astype(np.intp)
    n = len(who)
    when = start + rng.integers(0, SECONDS_PER_DAY, n)
    value = np.round(cat.amount[what] * pop.wealth[who] ** 0.7 * rng.lognormal(0.0, 0.6, n), 2)
    return _Part.of(when, HOLD, who, what, np.full(n, -1, np.int8), value)


@dataclass(frozen=True)
class EventModel:
    """Everything the window generator reads, prepared once."""

    config: SynthConfig
    catalogue: Catalogue
    population: Population
    funnel: Funnel
    customer_ids: pa.Array
    holds: _Part
    rate: npt.NDArray[np.float64]
    bounds: npt.NDArray[np.int64]
    id_width: int

    @classmethod
    def prepare(
        cls,
        config: SynthConfig,
        catalogue: Catalogue,
        population: Population,
        content: npt.NDArray[np.float32],
        customer_ids: pa.Array,
    ) -> EventModel:
        start, end = config.start_s, config.end_s
        funnel = Funnel.build(catalogue, population, content)
        holds = draw_holds(config, catalogue, population)
        # Session rates scale so the log holds about the requested number of events.
        target = config.events_per_customer * len(population)
        sessions = max(target - len(holds.who), 0.1 * target) / funnel.events_per_session(config)
        months_active = np.clip(population.active_to - population.active_from, 0, None) / _MONTH
        exposure = float(np.sum(population.activity * months_active, dtype=np.float64))
        rate = population.activity * (sessions / max(exposure, 1e-9))
        n_windows = max(config.months, int(np.ceil(target / _WINDOW_EVENTS)))
        bounds = start + (np.arange(n_windows + 1, dtype=np.int64) * (end - start)) // n_windows
        return cls(
            config=config,
            catalogue=catalogue,
            population=population,
            funnel=funnel,
            customer_ids=customer_ids,
            holds=holds,
            rate=rate.astype(np.float64),
            bounds=bounds,
            id_width=id_width(int(target * 3), 10),
        )

    def tables(self) -> Iterator[pa.Table]:
        """The log in file form, one time-ordered table per window."""
        issued = 0
        carried = [self.holds]
        for window in range(len(self.bounds) - 1):
            events = _Part.concatenate([*carried, *self._window(window)])
            # Funnel steps that complete after the window closes belong to a later window;
            # those after the end of the log have not happened yet.
            due = events.when < self.bounds[window + 1]
            carried = [events.take(~due)]
            table = self._table(events.take(due), issued)
            issued += table.num_rows
            yield table

    def _window(self, window: int) -> list[_Part]:
        rng = np.random.default_rng([self.config.seed, _EVENT_STREAM, window])
        pop, cat = self.population, self.catalogue
        lo, hi = int(self.bounds[window]), int(self.bounds[window + 1])
        begin = np.maximum(pop.active_from, lo)
        length = np.clip(np.minimum(pop.active_to, hi) - begin, 0, None)
        counts = rng.poisson(self.rate * (length / _MONTH))
        who = np.repeat(np.arange(len(pop), dtype=np.int32), counts)
        n = len(who)
        when = begin[who] + (rng.random(n) * length[who]).astype(np.int64)
        # Keep the day, redraw the time of day: people bank in the day and evening, not at 4 am.
        hour = np.searchsorted(_HOURS, rng.random(n), side="right").clip(0, 23)
        clock = hour * 3_600 + rng.integers(0, 3_600, n)
        when += clock - when % SECONDS_PER_DAY
        when = np.clip(when, begin[who], begin[who] + length[who] - 1)

        slot = rng.integers(0, pop.considered.shape[1], n)
        what = pop.considered[who, slot].astype(np.intp)
        explore = rng.random(n) < EXPLORE
        cum = np.cumsum(explore_weights(cat))
        browsed = np.searchsorted(cum, rng.random(int(explore.sum())), side="right")
        what[explore] = np.minimum(browsed, len(cat) - 1)
        live = (cat.available_from[what] <= when) & (when < cat.available_to[what])
        who, when, what = who[live], when[live], what[live]
        n = len(who)

        p_click, p_apply, p_buy = self.funnel.probabilities(who, what)
        draws = rng.random((3, n), dtype=np.float32)
        t_click = when + 5 + rng.exponential(90.0, n).astype(np.int64)
        t_apply = t_click + 60 + rng.exponential(6 * 3_600.0, n).astype(np.int64)
        decision = rng.exponential(1.0, n) * self.funnel.decision_days[what] * SECONDS_PER_DAY
        t_buy = t_apply + 600 + decision.astype(np.int64)
        # A withdrawn product takes no further steps, even in a session that began before.
        open_until = cat.available_to[what]
        clicked = (draws[0] < p_click) & (t_click < open_until)
        applied = clicked & (draws[1] < p_apply) & (t_apply < open_until)
        bought = applied & (draws[2] < p_buy) & (t_buy < open_until)

        usual = rng.random(n) < 0.65
        channel = np.where(usual, pop.channel[who], draw_channels(rng, pop.digital[who]))
        # Some sales close in a branch whatever channel the customer started in.
        channel = channel.astype(np.int8)
        closing = np.where(rng.random(n) < 0.2, CHANNELS.index("branch"), channel).astype(np.int8)
        value = np.round(cat.amount[what] * pop.wealth[who] ** 0.7 * rng.lognormal(0.0, 0.5, n), 2)

        return [
            _Part.of(when, VIEW, who, what, channel),
            _Part.of(t_click[clicked], CLICK, who[clicked], what[clicked], channel[clicked]),
            _Part.of(t_apply[applied], APPLY, who[applied], what[applied], channel[applied]),
            _Part.of(
                t_buy[bought], PURCHASE, who[bought], what[bought], closing[bought], value[bought]
            ),
        ]

    def _table(self, events: _Part, first_id: int) -> pa.Table:
        order = _time_order(events.when)
        when, kind, who, what, channel, value = events.take(order)
        n = len(order)
        return pa.table(
            {
                "event_id": prefixed_ids(
                    "E", np.arange(first_id + 1, first_id + n + 1, dtype=np.int64), self.id_width
                ),
                "customer_id": self.customer_ids.take(pa.array(who)),
                "product_id": self.catalogue.product_ids.take(pa.array(what.astype(np.int32))),
                "event_type": pa.array(EVENT_TYPES, pa.string()).take(pa.array(kind)),
                "occurred_at": pa.array(when, TIMESTAMP),
                "value": pa.array(value, pa.float64(), mask=np.isnan(value)),
                "channel": pa.array(CHANNELS, pa.string()).take(
                    pa.array(channel, mask=channel < 0)
                ),
            }
        )
