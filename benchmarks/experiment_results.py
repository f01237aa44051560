"""How long assignment and the results query take at a realistic size.

Usage: ``python -m benchmarks.experiment_results [DATABASE_URL] [--exposures N]``. Builds a fresh
database (migrated to head), fills it with one experiment, ``N`` exposures over ``N / 4``
customers and outcome events for a quarter of the exposures, then times
:func:`experiment_results` (median of 3) and ``assign_for_request`` (per call).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from app.db import migrate
from app.db.models import Customer, Exposure, Interaction, Product
from app.db.session import make_engine, make_session_factory
from app.schemas.experiments import ExperimentCreate
from app.services.experiments.assignment import assign_for_request, load_running
from app.services.experiments.definitions import change_status, create_experiment
from app.services.experiments.results import experiment_results

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def fill(url: str, n_exposures: int) -> None:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    rng = np.random.default_rng(0)
    n_customers = max(n_exposures // 4, 1)
    with factory() as session:
        create_experiment(
            session,
            ExperimentCreate.model_validate(
                {
                    "key": "bench",
                    "salt": "bench",
                    "variants": [
                        {"name": "control", "role": "control", "weight": 1, "strategy": "a"},
                        {"name": "treatment", "weight": 1, "strategy": "b"},
                    ],
                }
            ),
        )
        change_status(session, "bench", "start")
        session.add(Product(product_id="p", name="p", category="fund", risk_level="R1"))
        session.execute(insert(Customer), [{"customer_id": f"c{i}"} for i in range(n_customers)])
        session.commit()
        pks = dict(session.execute(select(Customer.customer_id, Customer.id)).all())
        product_pk = session.scalar(select(Product.id))
        owner = rng.integers(0, n_customers, n_exposures)
        rows = [
            {
                "recommendation_id": f"r{i}",
                "customer_id": f"c{owner[i]}",
                "strategy": "a",
                "served_from": "live",
                "degraded": False,
                "experiment": "bench",
                "variant": "control" if owner[i] % 2 else "treatment",
                "items": [],
                "served_at": T0,
            }
            for i in range(n_exposures)
        ]
        for start in range(0, n_exposures, 50_000):
            session.execute(insert(Exposure), rows[start : start + 50_000])
        answered = rng.choice(n_exposures, n_exposures // 4, replace=False)
        events = [
            {
                "event_id": f"e{i}",
                "customer_pk": pks[f"c{owner[i]}"],
                "product_pk": product_pk,
                "event_type": "click" if i % 5 else "apply",
                "occurred_at": T0,
                "recommendation_id": f"r{i}",
            }
            for i in answered.tolist()
        ]
        for start in range(0, len(events), 50_000):
            session.execute(insert(Interaction), events[start : start + 50_000])
        session.commit()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?")
    parser.add_argument("--exposures", type=int, default=200_000)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    migrate.upgrade(url)
    fill(url, args.exposures)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    timings = []
    with factory() as session:
        for _ in range(3):
            start = time.perf_counter()
            results = experiment_results(session, "bench", ["apply", "purchase", "hold"])
            timings.append(time.perf_counter() - start)
        snapshot = load_running(session)
    engine.dispose()
    n = 100_000
    start = time.perf_counter()
    for i in range(n):
        assign_for_request(f"c{i}", "home", snapshot)
    per_call = (time.perf_counter() - start) / n
    print(f"database: {url.split(':')[0]}, exposures: {args.exposures:,}")
    print(f"results query: median {statistics.median(timings):.3f} s over 3 runs")
    print(f"exposures counted: {sum(v.exposures for v in results.variants):,}")
    print(f"assign_for_request: {per_call * 1e6:.1f} µs per call ({n:,} calls)")


if __name__ == "__main__":
    main()
