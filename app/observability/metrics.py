"""Prometheus metrics: one registry per app (``app.state.metrics``), never the global default.

Request-time work is a dictionary lookup and a few additions per metric (plain tallies by their
bounded label values, turned into metric families when Prometheus scrapes). What the app
already keeps in memory (loaded models, the exposure buffer, the profile cache) is read only
when Prometheus scrapes, by a collector, so it costs the requests nothing.

No label ever carries a customer id, product id, request path or any other unbounded value:
routes are the route *templates*, strategies and rules come from small fixed sets.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from time import perf_counter
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; the recommendation endpoint answers in single-digit milliseconds when healthy.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

UNMATCHED_ROUTE = "<unmatched>"


class ServingSources(Protocol):
    """What the scrape-time collector reads from ``app.state`` (all optional)."""

    model_store: Any
    exposures: Any
    profiles: Any


class _Buckets:
    """A histogram kept as a plain list (one slot per bucket, the last +Inf, then the sum of
    the values), and its samples in the exposition's form."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        # The ``le`` label of each bucket, written as the client library writes it.
        self.labels = [floatToGoString(b) for b in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]

    def new(self) -> list[float]:
        return [0.0] * (len(self.bounds) + 2)

    def add(self, tally: list[float], value: float) -> None:
        tally[bisect.bisect_left(self.bounds, value)] += 1
        tally[-1] += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str], tally: list[float]) -> None:
        slots = list(tally)  # one copy, so the buckets, count and sum agree
        cumulative = itertools.accumulate(slots[:-1])
        family.add_metric(labels, list(zip(self.labels, cumulative, strict=True)), slots[-1])


class Metrics:
    """The app's metrics and the registry that owns them.

    The three per-request metrics (request durations, served lists, removed items) are tallied
    in plain dicts and lists and turned into metric families when Prometheus scrapes
    (:class:`_Tallies`): the client library's objects take a lock and several calls per update,
    a measurable share of the hot route's time. Updates come from the event loop's thread (the
    observability layer and the async routes), so they never race one another; a scrape from
    another thread reads a consistent-enough copy (each value is read once, whole).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._durations: dict[tuple[str, str, str], list[float]] = {}
        self._served: dict[tuple[str, str, str], list[int]] = {}
        self._rules: dict[str, list[int]] = {}
        self._sources: ServingSources | None = None
        self.registry.register(_Tallies(self))
        self.registry.register(_StateCollector(self))
        # The process itself: CPU, memory and file descriptors, the interpreter, the collector's
        # runs by generation, and how long each run paused the process (_GcPauses).
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(_GcPauses())

    def watch(self, sources: ServingSources) -> None:
        """Read models, exposure buffer and profile cache from ``sources`` at scrape time."""
        self._sources = sources

    @property
    def sources(self) -> ServingSources | None:
        return self._sources

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One finished HTTP request (``route`` is the template, never the concrete path)."""
        key = (method, route, str(status))
        tally = self._durations.get(key)
        if tally is None:
            tally = self._durations[key] = _LATENCY.new()
        _LATENCY.add(tally, seconds)

    def observe_recommendation(
        self,
        served_from: str,
        strategy: str,
        degraded: bool,
        removed: Sequence[tuple[str, str]] = (),
    ) -> None:
        """One served list, and the (product, rule) pairs the policy gate removed from it."""
        key = (served_from, strategy, "true" if degraded else "false")
        tally = self._served.get(key)
        if tally is None:
            tally = self._served[key] = [0]
        tally[0] += 1
        rules = self._rules
        for _product, rule in removed:
            count = rules.get(rule)
            if count is None:
                count = rules[rule] = [0]
            count[0] += 1

    def render(self) -> bytes:
        """The text exposition format of everything in this registry."""
        return generate_latest(self.registry)


_LATENCY = _Buckets(LATENCY_BUCKETS)


class _Tallies(Collector):
    """The per-request tallies of :class:`Metrics` as metric families, at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Any]:
        return self.collect()

    def collect(self) -> Iterator[Any]:
        metrics = self._metrics
        durations = HistogramMetricFamily(
            "finrec_http_request_duration_seconds",
            "Time from request start to the last response byte, by route template and status.",
            labels=("method", "route", "status"),
        )
        for key, tally in list(metrics._durations.items()):
            _LATENCY.add_to(durations, list(key), tally)
        yield durations
        served = CounterMetricFamily(
            "finrec_recommendations",
            "Recommendation lists served, by source, strategy and whether the answer was degraded.",
            labels=("served_from", "strategy", "degraded"),
        )
        for key, count in list(metrics._served.items()):
            served.add_metric(list(key), count[0])
        yield served
        removed = CounterMetricFamily(
            "finrec_policy_removed_items",
            "Items the policy gate removed from candidate lists, by the rule that removed them.",
            labels=("rule",),
        )
        for rule, count in list(metrics._rules.items()):
            removed.add_metric([rule], count[0])
        yield removed


# Seconds; a young collection takes well under a millisecond, a full one grows with every
# object the process holds that start-up did not freeze (cached profiles, gates, ...).
GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_GC_PAUSES = _Buckets(GC_PAUSE_BUCKETS)
# Per generation; process-wide, like the collector; filled by one callback installed on first use.
_gc_pauses: list[list[float]] = [_GC_PAUSES.new() for _ in range(3)]
_gc_started = [0.0]
_gc_hook_lock = threading.Lock()


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = perf_counter()
        return
    _GC_PAUSES.add(_gc_pauses[info["generation"]], perf_counter() - _gc_started[0])


def _watch_gc() -> None:
    with _gc_hook_lock:
        if _on_gc not in gc.callbacks:
            gc.callbacks.append(_on_gc)


class _GcPauses(Collector):
    """How long the interpreter's garbage collector paused the process, by generation."""

    def __init__(self) -> None:
        _watch_gc()

    def describe(self) -> Iterable[Any]:
        return self.collect()

    def collect(self) -> Iterator[Any]:
        family = HistogramMetricFamily(
            "finrec_gc_pause_seconds",
            "Time each garbage collection paused the process, by generation (2: full).",
            labels=("generation",),
        )
        for generation, tally in enumerate(_gc_pauses):
            _GC_PAUSES.add_to(family, [str(generation)], tally)
        yield family


class _StateCollector(Collector):
    """Gauges and counters read from the serving state when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Any]:
        return []  # built at scrape time only; nothing to register up front

    def collect(self) -> Iterator[Any]:
        sources = self._metrics.sources
        if sources is None:
            return
        store = getattr(sources, "model_store", None)
        if store is not None:
            info = InfoMetricFamily(
                "finrec_active_model",
                "The model version each strategy serves now.",
                labels=("strategy",),
            )
            loaded = GaugeMetricFamily("finrec_models_loaded", "Strategies with a loaded model.")
            strategies = store.strategies
            for strategy, version in sorted(strategies.items()):
                info.add_metric([strategy], {"version": version})
            loaded.add_metric([], len(strategies))
            yield info
            yield loaded
        exposures = getattr(sources, "exposures", None)
        if exposures is not None:
            for name, kind, documentation, attribute in _EXPOSURE_METRICS:
                found = getattr(exposures, attribute, None)
                if isinstance(found, int | float):
                    yield kind(name, documentation, found)
        profiles = getattr(sources, "profiles", None)
        if profiles is not None:
            yield _gauge("finrec_profile_cache_entries", "Customer profiles cached.", len(profiles))
            for outcome in ("hits", "misses"):
                found = getattr(profiles, outcome, None)
                if isinstance(found, int):
                    yield _counter(
                        f"finrec_profile_cache_{outcome}",
                        f"Profile cache lookups that {'found' if outcome == 'hits' else 'missed'}"
                        " a fresh profile.",
                        found,
                    )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


# (metric, kind, help, attribute of the exposure log): read at scrape time, skipped if absent.
_EXPOSURE_METRICS: tuple[tuple[str, Callable[[str, str, float], Metric], str, str], ...] = (
    ("finrec_exposure_buffer_depth", _gauge, "Exposure rows waiting to be written.", "pending"),
    (
        "finrec_exposure_dropped",
        _counter,
        "Exposure rows dropped because the buffer was full.",
        "dropped",
    ),
    ("finrec_exposure_written", _counter, "Exposure rows written to the database.", "written"),
    (
        "finrec_exposure_failed_flushes",
        _counter,
        "Exposure writes that failed (their rows were queued again).",
        "failed_flushes",
    ),
    (
        "finrec_exposure_refused",
        _counter,
        "Exposure rows the database refused for their content (left out, not retried).",
        "refused",
    ),
)
