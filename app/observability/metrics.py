"""Prometheus metrics: one registry per app (``app.state.metrics``), never the global default.

Request-time work is a dictionary lookup and one ``observe``/``inc`` per metric: label children
are cached by their (bounded) label values, so ``labels()`` is not paid per request. What the
app already keeps in memory (loaded models, the exposure buffer, the profile cache) is read only
when Prometheus scrapes, by a collector, so it costs the requests nothing.

No label ever carries a customer id, product id, request path or any other unbounded value:
routes are the route *templates*, strategies and rules come from small fixed sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; the recommendation endpoint answers in single-digit milliseconds when healthy.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

UNMATCHED_ROUTE = "<unmatched>"


class _Child(Protocol):
    def observe(self, amount: float) -> None: ...


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class ServingSources(Protocol):
    """What the scrape-time collector reads from ``app.state`` (all optional)."""

    model_store: Any
    exposures: Any
    profiles: Any


class Metrics:
    """The app's metrics and the registry that owns them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            "finrec_http_request_duration_seconds",
            "Time from request start to the last response byte, by route template and status.",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.recommendations = Counter(
            "finrec_recommendations",
            "Recommendation lists served, by source, strategy and whether the answer was degraded.",
            ("served_from", "strategy", "degraded"),
            registry=self.registry,
        )
        self.removed = Counter(
            "finrec_policy_removed_items",
            "Items the policy gate removed from candidate lists, by the rule that removed them.",
            ("rule",),
            registry=self.registry,
        )
        self._durations: dict[tuple[str, str, int], _Child] = {}
        self._served: dict[tuple[str, str, bool], _Incrementable] = {}
        self._rules: dict[str, _Incrementable] = {}
        self._sources: ServingSources | None = None
        self.registry.register(_StateCollector(self))

    def watch(self, sources: ServingSources) -> None:
        """Read models, exposure buffer and profile cache from ``sources`` at scrape time."""
        self._sources = sources

    @property
    def sources(self) -> ServingSources | None:
        return self._sources

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One finished HTTP request (``route`` is the template, never the concrete path)."""
        key = (method, route, status)
        child = self._durations.get(key)
        if child is None:
            child = self.request_duration.labels(method, route, str(status))
            self._durations[key] = child
        child.observe(seconds)

    def observe_recommendation(
        self,
        served_from: str,
        strategy: str,
        degraded: bool,
        removed: Sequence[tuple[str, str]] = (),
    ) -> None:
        """One served list, and the (product, rule) pairs the policy gate removed from it."""
        key = (served_from, strategy, degraded)
        child = self._served.get(key)
        if child is None:
            child = self.recommendations.labels(
                served_from, strategy, "true" if degraded else "false"
            )
            self._served[key] = child
        child.inc()
        if not removed:
            return
        counts: dict[str, int] = {}  # one increment per rule, not per item (each takes a lock)
        for _product, rule in removed:
            counts[rule] = counts.get(rule, 0) + 1
        for rule, count in counts.items():
            rule_child = self._rules.get(rule)
            if rule_child is None:
                rule_child = self.removed.labels(rule)
                self._rules[rule] = rule_child
            rule_child.inc(count)

    def render(self) -> bytes:
        """The text exposition format of everything in this registry."""
        return generate_latest(self.registry)


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
