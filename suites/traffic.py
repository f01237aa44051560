"""Many concurrent keep-alive clients in one process (httpx over HTTP/1.1, one connection each).

Each client walks random customers: mostly ``GET …/recommendations``, some events and similar
products. Every recommendation and similar-products list is checked against the
:class:`~suites.policy.PolicyReference`; every answer is counted by kind and status.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from suites.policy import PolicyReference

CHANNELS = ("app", "web", "branch", None)
PLACEMENTS = ("home", "offers", None)  # "offers" runs the demo's A/B experiment


@dataclass
class Sample:
    """One recommendation answer, for the suites that look at answers over time."""

    at: float
    status: int
    degraded: bool | None
    model_version: str | None


@dataclass
class Stats:
    """What the clients saw."""

    started: float = 0.0
    finished: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    checked_items: int = 0

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.statuses[kind, status] += 1
        self.latencies.setdefault(kind, []).append(seconds)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    def count(self, kind: str, status: int) -> int:
        return self.statuses[kind, status]

    def percentiles(self, kind: str | None = None) -> tuple[float, float]:
        """(p50, p99) in milliseconds, over one kind or all requests."""
        values = (
            self.latencies.get(kind, [])
            if kind
            else [v for vs in self.latencies.values() for v in vs]
        )
        if not values:
            return (float("nan"), float("nan"))
        p50, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 99])
        return float(p50), float(p99)

    def summary(self) -> list[str]:
        elapsed = max(self.finished - self.started, 1e-9)
        p50, p99 = self.percentiles()
        lines = [
            f"requests {self.requests} in {elapsed:.1f} s = {self.requests / elapsed:.0f} req/s",
            f"latency all: p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        ]
        for kind in sorted(self.latencies):
            k50, k99 = self.percentiles(kind)
            by_status = ", ".join(
                f"{status}: {n}" for (k, status), n in sorted(self.statuses.items()) if k == kind
            )
            lines.append(f"  {kind}: p50 {k50:.1f} ms, p99 {k99:.1f} ms ({by_status})")
        lines.append(f"5xx: {self.server_errors}")
        lines.append(f"connection errors: {sum(self.errors.values())} {dict(self.errors)}")
        lines.append(f"items checked against the policy: {self.checked_items}")
        lines.append(f"policy violations: {len(self.violations)}")
        return lines


@dataclass
class Traffic:
    """``clients`` concurrent clients for ``seconds`` (or until :meth:`stop`)."""

    base_url: str
    key: str
    reference: PolicyReference
    clients: int = 200
    seconds: float = 60.0
    events_share: float = 0.08
    similar_share: float = 0.07
    uncached_customers: bool = False  # each request a customer not asked for before
    stop_on_refusal: bool = False  # end a client once the server refuses connections
    extra_query: dict[str, str] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()
        self._customers = sorted(self.reference.allowed_level)
        active = self.reference.product_status.items()
        self._products = sorted(p for p, state in active if state == "active")
        self._cursor = 0
        if not self._customers or not self._products:
            raise ValueError("the database holds no customers or no active products")

    def stop(self) -> None:
        self._stopping.set()

    def _next_customer(self, rng: random.Random) -> str:
        if not self.uncached_customers:
            return rng.choice(self._customers)
        self._cursor = (self._cursor + 1) % len(self._customers)
        return self._customers[self._cursor]

    async def run(self) -> Stats:
        """Drive the clients until the time is up or :meth:`stop`; returns the statistics."""
        self.stats.started = deadline_from = time.monotonic()
        deadline = deadline_from + self.seconds
        # One client (one keep-alive connection) per simulated client: a pool shared by all would
        # search its connection list on every request. They share one TLS context (loopback
        # needs none, but each client would otherwise build its own at start-up).
        tls = ssl.create_default_context()
        clients = [
            httpx.AsyncClient(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self.key}"},
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                timeout=httpx.Timeout(60.0),
                verify=tls,
            )
            for _ in range(self.clients)
        ]
        try:
            await asyncio.gather(
                *(self._client(c, random.Random(n), deadline) for n, c in enumerate(clients))
            )
        finally:
            for c in clients:
                await c.aclose()
        self.stats.finished = time.monotonic()
        return self.stats

    async def _client(self, client: httpx.AsyncClient, rng: random.Random, deadline: float) -> None:
        if True:
            last: tuple[str, str, str | None] | None = None  # customer, product, rec id
            while not self._stopping.is_set() and time.monotonic() < deadline:
                roll = rng.random()
                try:
                    if roll < self.events_share and last is not None:
                        await self._event(client, *last)
                    elif roll < self.events_share + self.similar_share:
                        await self._similar(client, rng)
                    else:
                        last = await self._recommend(client, rng) or last
                except httpx.HTTPError as exc:
                    self.stats.errors[type(exc).__name__] += 1
                    if self.stop_on_refusal and isinstance(exc, httpx.ConnectError):
                        return
                    await asyncio.sleep(0.05)

    async def _timed(
        self, kind: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any
    ) -> httpx.Response:
        start = time.perf_counter()
        response = await client.request(method, url, **kw)
        self.stats.record(kind, response.status_code, time.perf_counter() - start)
        return response

    async def _recommend(
        self, client: httpx.AsyncClient, rng: random.Random
    ) -> tuple[str, str, str | None] | None:
        customer = self._next_customer(rng)
        params: dict[str, str] = {"k": str(rng.randint(1, 20)), **self.extra_query}
        channel, placement = rng.choice(CHANNELS), rng.choice(PLACEMENTS)
        if channel:
            params["channel"] = channel
        if placement:
            params["placement"] = placement
        response = await self._timed(
            "recommendations",
            client,
            "GET",
            f"/v1/customers/{customer}/recommendations",
            params=params,
        )
        if response.status_code != 200:
            self.stats.samples.append(Sample(time.monotonic(), response.status_code, None, None))
            return None
        body = response.json()
        self.stats.samples.append(
            Sample(time.monotonic(), 200, bool(body["degraded"]), body.get("model_version"))
        )
        self._check(customer, body)
        items = body["items"]
        if not items:
            return None
        return customer, rng.choice(items)["product_id"], body["recommendation_id"]

    async def _similar(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        customer, product = self._next_customer(rng), rng.choice(self._products)
        response = await self._timed(
            "similar",
            client,
            "GET",
            f"/v1/products/{product}/similar",
            params={"k": "5", "customer_id": customer},
        )
        if response.status_code == 200:
            self._check(customer, response.json())

    async def _event(
        self, client: httpx.AsyncClient, customer: str, product: str, rec_id: str | None
    ) -> None:
        # view/click only: they change no holdings, so the policy reference stays true.
        event = {
            "customer_id": customer,
            "product_id": product,
            "event_type": "click" if rec_id and rec_id[-1] in "01234567" else "view",
            "occurred_at": time.time(),
            "channel": "app",
            "recommendation_id": rec_id,
        }
        await self._timed("events", client, "POST", "/v1/events", json={"events": [event]})

    def _check(self, customer: str, body: dict[str, Any]) -> None:
        self.stats.checked_items += len(body.get("items", []))
        problems = self.reference.violations(customer, body)
        if problems and len(self.stats.violations) < 1000:
            self.stats.violations.extend(problems)
