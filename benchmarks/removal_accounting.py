"""What removal accounting (decision records) adds to one recommendation, measured in-process.

Protocol (the numbers in docs/decisions.md come from this script):

1. Build a catalogue snapshot of ``--products`` products (five categories, risk levels R1-R5,
   ~10% not active, popularity falling with position) and ``--customers`` profiles (risk classes
   C0-C5, a sixth with expired assessments, ~8% without consent, 4 holdings each).
2. Serve every customer ``--loops`` times through ``RecommendationService.recommend`` (the
   popularity fallback: it runs the whole gate, caps, backfill and reasons path), once with the
   accounting and once with it (the head removals, the category-cap skip list and the removal
   list) replaced by stubs returning nothing (``baseline``), alternating the two ``--repeats``
   times in the same process; report the median microseconds per request of each, their
   difference and ratio. What stays in the baseline: one boolean index of the candidates (the
   gate's drop list). Profiles repeat, as they do in serving (the profile cache), so the head
   removals come from the service's per-customer cache; their cost on a cache miss (a new or
   changed profile) is timed on its own.
3. The load average (``uptime``) is printed next to the numbers.

Run: ``.venv/bin/python benchmarks/removal_accounting.py``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

import app.services.recommend.service as service_module
from app.services.model_store import ModelStore
from app.services.profiles import Profile
from app.services.recommend.catalog import CatalogSnapshot
from app.services.recommend.catalog_holder import CatalogHolder
from app.services.recommend.promotions import PromotionBook
from app.services.recommend.removals import head_removals
from app.services.recommend.service import RecommendationService, RecommendRequest
from app.settings import Settings

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def build(products: int, customers: int, seed: int) -> tuple[RecommendationService, list[Profile]]:
    rng = np.random.default_rng(seed)
    cats = ["deposit", "fund", "insurance", "loan", "card"]
    rows = [
        (
            f"P{i:04d}",
            f"Product {i}",
            cats[i % 5],
            f"R{int(rng.integers(1, 6))}",
            "active" if rng.random() > 0.1 else "retired",
        )
        for i in range(products)
    ]
    popularity = {r[0]: float(products - i) for i, r in enumerate(rows)}
    catalog = CatalogSnapshot.build(rows, popularity)
    settings = Settings(environment="test", _env_file=None)  # type: ignore[call-arg]
    service = RecommendationService(
        settings, CatalogHolder(None, catalog), ModelStore(), PromotionBook(None)
    )
    ids = [r[0] for r in rows]
    profiles = [
        Profile(
            customer_id=f"C{j}",
            segment=None,
            risk_class=j % 6,
            risk_valid_until=NOW + timedelta(days=(-1 if j % 7 == 6 else 90)),
            consent=j % 12 != 0,
            held=frozenset(rng.choice(ids[: products // 4], 4, replace=False).tolist()),
        )
        for j in range(customers)
    ]
    return service, profiles


def per_request_us(service: RecommendationService, profiles: list[Profile], loops: int) -> float:
    request = RecommendRequest(k=10)
    recommend = service.recommend
    start = time.perf_counter()
    for _ in range(loops):
        for p in profiles:
            recommend(p.customer_id, p, request, now=NOW)
    return (time.perf_counter() - start) / (loops * len(profiles)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--loops", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    service, profiles = build(args.products, args.customers, args.seed)
    names = ("removed_products", "skipped_by_cap", "head_removals")
    real: dict[str, Any] = {name: getattr(service_module, name) for name in names}
    per_list = [
        service.recommend(p.customer_id, p, RecommendRequest(k=10), now=NOW) for p in profiles
    ]
    removed = [len(r.removed) for r in per_list]

    def stub(*_: object) -> list[tuple[str, str]]:
        return []

    per_request_us(service, profiles, 2)  # warm the gate cache and the allocator
    on: list[float] = []
    off: list[float] = []
    for _ in range(args.repeats):
        for name in names:
            setattr(service_module, name, stub)
        off.append(per_request_us(service, profiles, args.loops))
        for name in names:
            setattr(service_module, name, real[name])
        on.append(per_request_us(service, profiles, args.loops))
    base, acc = statistics.median(off), statistics.median(on)
    catalog = service.catalog.current  # type: ignore[attr-defined]
    gates = [service._gate(p.customer_id, p, catalog, NOW, True) for p in profiles]
    start = time.perf_counter()
    for _ in range(args.loops):
        for p, gate in zip(profiles, gates, strict=True):
            head_removals(gate, catalog, p, True, 10)
    miss = (time.perf_counter() - start) / (args.loops * len(profiles)) * 1e6
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(
        f"catalogue {args.products} products, {args.customers} customers, k=10, "
        f"removed per list: median {statistics.median(removed):g}, max {max(removed)}"
    )
    print(f"baseline (no accounting): {base:.1f} us/request  runs {[round(x, 1) for x in off]}")
    print(f"with accounting:          {acc:.1f} us/request  runs {[round(x, 1) for x in on]}")
    print(f"accounting adds {acc - base:.1f} us/request (ratio {acc / base:.3f})")
    print(f"head removals on a cache miss: {miss:.1f} us")


if __name__ == "__main__":
    main()
