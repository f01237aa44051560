"""Precompute speed and memory: the vectorised core against implicit and bare numpy; end to end.

Protocol
--------
``core``: random factors (customers x f, products x f, float32), random holdings (0-5 products a
customer), random risk classes 0..5, a catalogue of five categories (product risk level and
category both follow the position, about 10% inactive), overall and three segment popularity
lists, a quarter of customers without a segment. BLAS and implicit held to one thread.
Alternating ``--repeats`` times over the same data, in one process:

* implicit: ``AlternatingLeastSquares.recommend(all_ids, holdings, N=k,
  filter_already_liked_items=True)`` on a model whose factors are the same arrays;
* bare numpy: per chunk ``U @ F.T`` then ``argpartition`` for k (no mask, no sort);
* finrec: per chunk exactly what ``ChunkScorer.score`` runs for personalised customers: the
  same product, then ``score_lists`` (gate: the risk class's penalty row and the holdings'
  sparse rows; the 3k+5 candidates, best first, under a category cap of 3, in the one compiled
  pass per customer that the live API runs too; backfill from the segment / overall popularity
  pools, within the caps then without) and the reason-code table lookup: final lists as arrays;
* finrec_rows: the same plus the batch row tuples the database write receives (Python objects,
  one per item: the part of a run that grows with ``k`` and is not scoring).

Wall and process CPU time are recorded for each leg (every leg runs on one thread, so CPU time
is the steadier measure on a shared machine), with the load average before and after.
Medians over the repeats are reported.

``e2e``: a database (SQLite file or PostgreSQL) seeded with customers, products and holdings, an ALS
model fitted on the holdings, then ``run_precompute`` timed from start to published batch in a fresh
child process, so the peak RSS reported (``VmHWM``, the mark reset just before the run) is the job's
own and not the seeding's. A thread samples ``/proc/self/statm`` every 5 ms during the run for the
peak of anonymous memory, which, unlike ``VmHWM``, leaves out the libraries' file-backed pages
(their count follows the page cache, not the job). After the run the child loads the model the way
the job does (customer arrays memory-mapped, no per-customer dict), then the way serving does,
releasing each, to report what the model alone holds per customer either way (after, not before:
memory the allocator keeps from those loads would otherwise serve part of the run's peak; the
figures may be a little low where they reuse memory the run freed). The database (PostgreSQL: a
database named after the benchmark's process id) and the artifacts are removed afterwards. Run it at
two ``--customers`` sizes: the growth of the peak between them, per customer, is what a run holds
for everyone.

``rss``: a child process runs the finrec core over ``--customers`` with ``--chunk-size`` and
reports its peak RSS and the RSS before the loop (data and factors loaded).

Run from the repository root, e.g.::

    PYTHONPATH=. .venv/bin/python benchmarks/precompute_bench.py core --customers 1000000
    PYTHONPATH=. .venv/bin/python benchmarks/precompute_bench.py e2e --backend sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from app.jobs.precompute.scoring import BlockInputs, format_rows, reason_code_ids, score_lists
from app.services.recommend.catalog import CatalogSnapshot

CATEGORY_CAP = 3  # the serving default (Settings.category_cap)

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


CATEGORIES = ("card", "deposit", "fund", "insurance", "loan")
SEGMENTS = ("mass", "affluent", "private")


def make_data(customers: int, products: int, factors: int, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, size=customers)
    rows = np.repeat(np.arange(customers), counts)
    cols = rng.integers(0, products, size=rows.shape[0])
    holdings = sp.csr_matrix(
        (np.ones(rows.shape[0], dtype=np.float32), (rows, cols)), shape=(customers, products)
    )
    holdings.sum_duplicates()
    holdings.data[:] = 1.0
    ids = [f"P{i:04d}" for i in range(products)]
    catalog = CatalogSnapshot.build(
        [
            (pid, pid, CATEGORIES[i % 5], f"R{1 + i % 5}", "active" if rng.random() > 0.1 else "x")
            for i, pid in enumerate(ids)
        ],
        {pid: float(v) for pid, v in zip(ids, rng.integers(0, 5000, size=products), strict=True)},
        {
            seg: {p: float(rng.integers(1, 500)) for p in rng.choice(ids, size=products // 3)}
            for seg in SEGMENTS
        },
    )
    inputs = BlockInputs.of(catalog, None)
    segment = rng.integers(0, len(SEGMENTS) + 1, size=customers)  # the last: no segment
    pool_index = np.asarray([inputs.pools.index_of(s) for s in (*SEGMENTS, None)], dtype=np.int64)[
        segment
    ]
    return {
        "U": (rng.standard_normal((customers, factors), dtype=np.float32) * 0.1),
        "F": (rng.standard_normal((products, factors), dtype=np.float32) * 0.1),
        "holdings": holdings,
        "risk": rng.integers(0, 6, size=customers).astype(np.int64),
        "catalog": catalog,
        "inputs": inputs,
        "pool_index": pool_index,
        "no_segment": segment == len(SEGMENTS),
    }


def run_finrec(data: dict[str, Any], k: int, chunk: int, rows: bool = False) -> int:
    """The job's block path (``ChunkScorer.score`` without the database): product, then the
    compiled pass (gate from the risk penalty row and the holdings, the 3k+5 candidates under
    category caps, backfill from the segment/overall popularity pools), reason codes; with
    ``rows`` also the batch row tuples."""
    U, F, holdings = data["U"], data["F"], data["holdings"]
    FT = np.ascontiguousarray(F.T)
    catalog, inputs = data["catalog"], data["inputs"]
    n = U.shape[0]
    kept = 0
    ids = [f"C{i:07d}" for i in range(chunk)] if rows else []
    table = np.asarray(["als", "popular_in_segment", "popular", "als", "x"], dtype=object)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        every = np.ones(stop - start, dtype=bool)
        scores = U[start:stop] @ FT
        lists = score_lists(
            inputs,
            scores,
            every,
            data["risk"][start:stop],
            holdings[start:stop],
            data["pool_index"][start:stop],
            k,
            CATEGORY_CAP,
            True,
        )
        code_id = reason_code_ids(lists, every, every, data["no_segment"][start:stop])
        if rows:
            r, c = np.nonzero(lists.positions >= 0)
            out = format_rows(
                "b", ids[: stop - start], r, c, lists, code_id, catalog.product_ids, table
            )
            kept += len(out)
        else:
            kept += int((lists.positions >= 0).sum())
    return kept


def run_bare(data: dict[str, Any], k: int, chunk: int) -> int:
    U, F = data["U"], data["F"]
    FT = np.ascontiguousarray(F.T)
    n, p = U.shape[0], F.shape[0]
    total = 0
    for start in range(0, n, chunk):
        scores = U[start : start + chunk] @ FT
        top = np.argpartition(scores, p - k, axis=1)[:, p - k :]
        total += top.shape[0]
    return total


def run_implicit(data: dict[str, Any], k: int) -> int:
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=data["U"].shape[1], num_threads=1)
    model.user_factors = data["U"]
    model.item_factors = data["F"]
    ids, _ = model.recommend(
        np.arange(data["U"].shape[0]), data["holdings"], N=k, filter_already_liked_items=True
    )
    return int(ids.shape[0])


def core(args: argparse.Namespace) -> dict[str, Any]:
    data = make_data(args.customers, args.products, args.factors)
    load_before = os.getloadavg()
    legs = ("implicit", "bare", "finrec", "finrec_rows")
    times: dict[str, list[float]] = {name: [] for name in legs}
    # Process CPU time too: every leg runs on one thread, and on a shared machine CPU time is
    # far steadier than wall time (it leaves out the time other processes hold the core).
    cpu_times: dict[str, list[float]] = {name: [] for name in legs}
    with threadpool_limits(1):
        for _ in range(args.repeats):
            for name, fn in (
                ("implicit", lambda: run_implicit(data, args.k)),
                ("bare", lambda: run_bare(data, args.k, args.chunk_size)),
                ("finrec", lambda: run_finrec(data, args.k, args.chunk_size)),
                ("finrec_rows", lambda: run_finrec(data, args.k, args.chunk_size, rows=True)),
            ):
                tick, cpu = time.perf_counter(), time.process_time()
                fn()
                times[name].append(time.perf_counter() - tick)
                cpu_times[name].append(time.process_time() - cpu)
                print(name, round(times[name][-1], 2), round(cpu_times[name][-1], 2), flush=True)
    med = {name: statistics.median(v) for name, v in times.items()}
    cpu = {name: statistics.median(v) for name, v in cpu_times.items()}
    n = args.customers
    return {
        "mode": "core",
        "customers": n,
        "products": args.products,
        "factors": args.factors,
        "k": args.k,
        "chunk_size": args.chunk_size,
        "repeats": args.repeats,
        "seconds": times,
        "median_seconds": med,
        "customers_per_second": {name: n / s for name, s in med.items()},
        "finrec_speedup_vs_implicit": med["implicit"] / med["finrec"],
        "finrec_slowdown_vs_bare": med["finrec"] / med["bare"],
        "finrec_rows_speedup_vs_implicit": med["implicit"] / med["finrec_rows"],
        "finrec_rows_slowdown_vs_bare": med["finrec_rows"] / med["bare"],
        "cpu_seconds": cpu_times,
        "median_cpu_seconds": cpu,
        "cpu_finrec_speedup_vs_implicit": cpu["implicit"] / cpu["finrec"],
        "cpu_finrec_slowdown_vs_bare": cpu["finrec"] / cpu["bare"],
        "cpu_finrec_rows_speedup_vs_implicit": cpu["implicit"] / cpu["finrec_rows"],
        "cpu_finrec_rows_slowdown_vs_bare": cpu["finrec_rows"] / cpu["bare"],
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def rss(args: argparse.Namespace) -> dict[str, Any]:
    import gc

    data = make_data(args.customers, args.products, args.factors)
    gc.collect()
    # Reset the kernel's peak-RSS mark so the peak below is the scoring loop's own.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_mib("VmRSS")
    with threadpool_limits(1):
        run_finrec(data, args.k, args.chunk_size, rows=True)
    peak = _status_mib("VmHWM")
    return {
        "mode": "rss",
        "customers": args.customers,
        "products": args.products,
        "chunk_size": args.chunk_size,
        "rss_before_loop_mib": before,
        "peak_rss_during_loop_mib": peak,
        "scoring_extra_mib": peak - before,
        "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def seed_database(url: str, customers: int, products: int, artifacts: Path) -> None:
    import pandas as pd
    from sqlalchemy import insert, select

    from app.db import migrate
    from app.db.models import Customer, Holding, Product
    from app.db.session import make_engine, make_session_factory
    from app.services import registry
    from recommenders.artifacts import save_artifact
    from recommenders.dataset import Dataset
    from recommenders.implicit_models import ALSRecommender

    migrate.upgrade(url)
    rng = np.random.default_rng(5)
    now = datetime(2026, 11, 25, tzinfo=UTC)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    prod = [
        {
            "product_id": f"P{i:04d}",
            "name": f"Product {i}",
            "category": ("deposit", "fund", "insurance", "loan", "card")[i % 5],
            "risk_level": f"R{1 + i % 5}",
            "status": "active" if i % 10 else "suspended",
            "tags": [],
            "features": {},
        }
        for i in range(products)
    ]
    cust = [
        {
            "customer_id": f"U{i:08d}",
            "segment": ("mass", "affluent", "private")[i % 3],
            "risk_class": f"C{1 + i % 5}",
            "risk_assessed_at": now - timedelta(days=int(i % 900)),
            "consent_personalization": i % 13 != 0,
            "features": {},
        }
        for i in range(customers)
    ]
    taste = rng.integers(0, 5, size=customers)
    pairs = {
        (c, int(p))
        for c in range(customers)
        for p in (taste[c] + 5 * rng.integers(0, products // 5, size=int(rng.integers(1, 5))))
    }
    with factory() as session, session.begin():
        session.execute(insert(Product), prod)
        for start in range(0, customers, 50_000):
            session.execute(insert(Customer), cust[start : start + 50_000])
        cpk = dict(session.execute(select(Customer.customer_id, Customer.id)).all())
        ppk = dict(session.execute(select(Product.product_id, Product.id)).all())
        holdings = [
            {
                "customer_pk": cpk[f"U{c:08d}"],
                "product_pk": ppk[f"P{p:04d}"],
                "source": "import",
                "since": now,
            }
            for c, p in sorted(pairs)
        ]
        for start in range(0, len(holdings), 100_000):
            session.execute(insert(Holding), holdings[start : start + 100_000])
    events = pd.DataFrame(
        {
            "customer_id": [f"U{c:08d}" for c, _ in sorted(pairs)],
            "product_id": [f"P{p:04d}" for _, p in sorted(pairs)],
            "event_type": "hold",
            "occurred_at": now.isoformat(),
        }
    )
    frame = pd.DataFrame(cust).drop(columns=["features"])
    frame["risk_assessed_at"] = pd.to_datetime(frame["risk_assessed_at"], utc=True)
    products_frame = pd.DataFrame(prod).drop(columns=["features"])
    model = ALSRecommender(factors=32, iterations=2)
    model.fit(Dataset.from_frames(frame, products_frame, events))
    path = save_artifact(model, artifacts / "als")
    with factory() as session, session.begin():
        row = registry.register_artifact(session, path)
        registry.activate(session, row.version)
    engine.dispose()


def e2e(args: argparse.Namespace) -> dict[str, Any]:
    import shutil
    import subprocess

    from sqlalchemy import text

    from app.db.session import make_engine

    work = Path(tempfile.mkdtemp(prefix="finrec-precompute-"))
    database = f"finrec_precompute_bench_{os.getpid()}"
    try:
        if args.backend == "sqlite":
            url = f"sqlite:///{work / 'bench.db'}"
        else:
            admin = make_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                conn.execute(text(f"CREATE DATABASE {database}"))
            admin.dispose()
            url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{database}"
        tick = time.perf_counter()
        seed_database(url, args.customers, args.products, work / "artifacts")
        seeded = time.perf_counter() - tick
        # The job runs in a fresh interpreter, so its peak RSS is its own, not the seeding's.
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "e2e-run",
                "--url",
                url,
                "--artifacts",
                str(work / "artifacts"),
                "--k",
                str(args.k),
                "--chunk-size",
                str(args.chunk_size),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        run = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.backend == "postgresql":
            admin = make_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            admin.dispose()
    return {
        "mode": "e2e",
        "backend": args.backend,
        "customers": args.customers,
        "products": args.products,
        "k": args.k,
        "chunk_size": args.chunk_size,
        "seed_seconds": seeded,
        "customers_per_second": args.customers / run["seconds"],
        **run,
    }


def _artifact_dir(root: Path) -> Path:
    return next(root.rglob("manifest.json")).parent


class StatmPeak:
    """Samples this process's resident set every ``interval`` seconds from another thread:
    the peak of anonymous memory (resident minus file-backed and shared pages) and the
    file-backed part at the peak of the whole. ``VmHWM`` counts the file-backed pages of the
    libraries (100-200 MiB here), and how many of those are mapped depends on what the page
    cache holds, not on the job: identical runs differed by up to 57 MiB there."""

    def __init__(self, interval: float = 0.005) -> None:
        import threading

        self.interval = interval
        self.anon = self.total = self.file_at_total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE") / 2**20
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            while not self._stop.wait(self.interval):
                fields = os.pread(fd, 200, 0).split()
                resident, shared = int(fields[1]) * page, int(fields[2]) * page
                self.anon = max(self.anon, resident - shared)
                if resident > self.total:
                    self.total, self.file_at_total = resident, shared
        finally:
            os.close(fd)

    def __enter__(self) -> StatmPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def e2e_run(args: argparse.Namespace) -> dict[str, Any]:
    """The child of ``e2e``: one ``run_precompute`` in this fresh process, then its memory."""
    import gc

    from app.db.session import make_engine
    from app.jobs.precompute import PrecomputeOptions, run_precompute
    from app.services.model_store import LoadedModel, mapped_loader
    from app.settings import Settings
    from recommenders.artifacts import load_artifact
    from recommenders.registry import get_algorithm

    settings = Settings(
        database_url=args.url,
        artifact_dir=args.artifacts,
        default_strategy="als",
        _env_file=None,  # type: ignore[call-arg]
    )
    engine = make_engine(args.url)
    Path("/proc/self/clear_refs").write_text("5")  # the peak below is the run's own
    before = _status_mib("VmRSS")  # interpreter and libraries
    load_before = os.getloadavg()
    with threadpool_limits(1), StatmPeak() as sampled:
        tick, cpu = time.perf_counter(), time.process_time()
        result = run_precompute(
            engine, settings, PrecomputeOptions(k=args.k, chunk_size=args.chunk_size)
        )
        seconds = time.perf_counter() - tick
        cpu_seconds = time.process_time() - cpu
    peak = _status_mib("VmHWM")
    file_backed_after = _status_mib("RssFile")
    engine.dispose()
    # What the model holds for its customers, measured after the run (so that
    # memory it leaves to the allocator cannot serve the run's own peak): loaded the way the
    # job loads it (customer arrays memory-mapped, chunks looked up by binary search; one chunk
    # of lookups made), then the way serving loads it (factors, ID map, the per-customer dict),
    # each released again. The job's way first: memory freed by the other might be reused.
    artifact = _artifact_dir(args.artifacts)
    get_algorithm(json.loads((artifact / "manifest.json").read_text())["algorithm"])  # imports
    gc.collect()
    base = _status_mib("VmRSS")
    held = LoadedModel.wrap("als", "bench", mapped_loader(artifact), index_customers=False)
    held.customer_positions(held.customer_external[: args.chunk_size].tolist())
    held.release_pages()
    job_model_mib = _status_mib("VmRSS") - base
    del held
    gc.collect()
    base = _status_mib("VmRSS")
    held = LoadedModel.wrap("als", "bench", load_artifact(artifact))
    model_mib = _status_mib("VmRSS") - base
    customers = len(held.customer_index)
    factors_bytes = np.asarray(held.model.customer_factors).nbytes
    del held
    gc.collect()
    return {
        "seconds": seconds,
        "cpu_seconds_of_the_job_process": cpu_seconds,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "rows": result.rows,
        "outcomes": result.outcomes,
        "complete": result.complete,
        "rss_before_run_mib": before,
        "peak_rss_of_the_job_process_mib": peak,
        "peak_anonymous_rss_sampled_mib": sampled.anon,
        "file_backed_rss_at_the_sampled_peak_mib": sampled.file_at_total,
        "file_backed_rss_after_run_mib": file_backed_after,
        "model_loaded_mib": model_mib,
        "model_loaded_bytes_per_customer": model_mib * 2**20 / customers,
        "model_loaded_for_the_job_mib": job_model_mib,
        "model_loaded_for_the_job_bytes_per_customer": job_model_mib * 2**20 / customers,
        "model_customer_factors_bytes_per_customer": factors_bytes / customers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["core", "rss", "e2e", "e2e-run"])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "e2e-run":
        print(json.dumps(e2e_run(args), default=str))
        return
    result = {"core": core, "rss": rss, "e2e": e2e}[args.mode](args)
    result["machine"] = machine()
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = args.out or RESULTS / (
        f"precompute_{args.mode}_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
