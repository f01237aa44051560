"""Import speed and memory: interactions files of two sizes into SQLite and/or PostgreSQL.

Generates a synthetic interactions CSV (plus the customers and products it references) with a
small vectorised generator, loads it with ``finrec import`` semantics (``run_import``) into a fresh
database, and reports rows/s, wall time and peak RSS. Each measured import runs in its own child
process so peak RSS belongs to that import alone. Results go to ``benchmarks/results/``.

    python -m benchmarks.import_bench --rows 10000000 --small-rows 1000000
    python -m benchmarks.import_bench --database-url postgresql+psycopg://postgres@127.0.0.1/test

Diagnostics: ``--no-holdings`` imports with no holding event types (so no holdings are derived);
``--trace-memory`` adds, per chunk, the resident set size, SQLite's own allocator figures
(``sqlite3_status64``, read through the process's libsqlite3) and pyarrow's allocated bytes.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import text
from sqlalchemy.engine import make_url

RESULTS = Path(__file__).resolve().parent / "results"
EVENT_TYPES = np.array(["view", "click", "apply", "purchase", "hold"])
EVENT_P = np.array([0.55, 0.25, 0.08, 0.07, 0.05])
CHANNELS = np.array(["app", "web", "branch", "call_centre"])
CATEGORIES = np.array(["deposit", "wealth", "fund", "insurance", "loan", "card"])
_GEN_BLOCK = 1_000_000
_START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
_SPAN = 540 * 86_400  # about 18 months


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def generate(out: Path, rows: int, customers: int, products: int, seed: int = 7) -> None:
    """Write customers.csv, products.csv and interactions.csv under ``out`` (vectorised)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cust = np.arange(customers)
    pa_csv.write_csv(
        pa.table(
            {
                "customer_id": _ids("C", cust, 8),
                "risk_class": pa.array(np.char.add("C", rng.integers(1, 6, customers).astype(str))),
                "segment": pa.array(rng.choice(["mass", "affluent", "private"], customers)),
                "age": pa.array(rng.integers(18, 90, customers)),
                "channel": pa.array(rng.choice(CHANNELS, customers)),
            }
        ),
        out / "customers.csv",
    )
    prod = np.arange(products)
    pa_csv.write_csv(
        pa.table(
            {
                "product_id": _ids("P", prod, 4),
                "name": _ids("Product ", prod, 4),
                "category": pa.array(CATEGORIES[prod % len(CATEGORIES)]),
                "risk_level": pa.array(np.char.add("R", (prod % 5 + 1).astype(str))),
                "tags": pa.array(np.full(products, "demo|synthetic")),
            }
        ),
        out / "products.csv",
    )
    # Popularity skew on both sides, time-ordered events, values only on purchases.
    cust_p = 1.0 / np.arange(1, customers + 1) ** 0.3
    cust_p /= cust_p.sum()
    prod_p = 1.0 / np.arange(1, products + 1) ** 0.8
    prod_p /= prod_p.sum()
    with pa_csv.CSVWriter(out / "interactions.csv", _interaction_schema()) as writer:
        for start in range(0, rows, _GEN_BLOCK):
            n = min(_GEN_BLOCK, rows - start)
            types = rng.choice(EVENT_TYPES, n, p=EVENT_P)
            offsets = start + np.sort(rng.random(n)) * n
            when = _START + (offsets * (_SPAN / rows)).astype(np.int64)
            value = np.where(types == "purchase", np.round(rng.gamma(2.0, 500.0, n), 2), np.nan)
            table = pa.table(
                {
                    "event_id": _ids("E", np.arange(start, start + n), 10),
                    "customer_id": _ids("C", rng.choice(customers, n, p=cust_p), 8),
                    "product_id": _ids("P", rng.choice(products, n, p=prod_p), 4),
                    "event_type": pa.array(types),
                    "occurred_at": pc.strftime(
                        pa.array(when, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%SZ"
                    ),
                    "value": pa.array(value, from_pandas=True),
                    "channel": pa.array(rng.choice(CHANNELS, n)),
                },
                schema=_interaction_schema(),
            )
            writer.write_table(table)


def _interaction_schema() -> pa.Schema:
    return pa.schema(
        [
            ("event_id", pa.string()),
            ("customer_id", pa.string()),
            ("product_id", pa.string()),
            ("event_type", pa.string()),
            ("occurred_at", pa.string()),
            ("value", pa.float64()),
            ("channel", pa.string()),
        ]
    )


def fresh_database(url: str, scratch: Path, label: str) -> str:
    """An empty, migrated database for one measurement."""
    from app.db import migrate
    from app.db.session import make_engine

    if url.startswith("sqlite"):
        path = scratch / f"{label}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        target = f"sqlite:///{path}"
    else:
        base = make_url(url)
        name = f"finrec_bench_{label}"
        admin = make_engine(
            base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        target = base.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(target)
    return target


def _rss_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return -1


def _sqlite_memory() -> Callable[[], tuple[int, int]]:
    """(current, high-water) MiB that SQLite has allocated in this process; the sqlite3
    module links the shared libsqlite3, so the library loaded here is the same instance."""
    name = ctypes.util.find_library("sqlite3")
    lib = ctypes.CDLL(name) if name else None

    def read() -> tuple[int, int]:
        if lib is None:
            return (-1, -1)
        current, high = ctypes.c_int64(), ctypes.c_int64()
        lib.sqlite3_status64(0, ctypes.byref(current), ctypes.byref(high), 0)  # MEMORY_USED
        return current.value >> 20, high.value >> 20

    return read


def child(kind: str, path: str, url: str) -> None:
    """Run one import in this process and print its figures as JSON (used via subprocess)."""
    from app.db.session import make_engine
    from app.jobs.importer import ImportKind, ImportOptions, run_import
    from app.settings import Settings

    diagnostics = set(os.environ.get("FINREC_BENCH_DIAGNOSTICS", "").split(","))
    settings = Settings(database_url=url)
    if "no-holdings" in diagnostics:
        settings = settings.model_copy(update={"holding_event_types": []})
    trace: list[tuple[int, int, tuple[int, int], int]] = []
    options = ImportOptions()
    if "trace-memory" in diagnostics:
        sqlite_memory = _sqlite_memory()

        def sample(rows: int) -> None:
            arrow = pa.total_allocated_bytes() >> 20
            trace.append((rows, _rss_mib(), sqlite_memory(), arrow))

        options.progress = sample
    engine = make_engine(url)
    server_pid = None
    if not url.startswith("sqlite"):
        with engine.connect() as conn:
            server_pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    load_before = os.getloadavg()[0]
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    # The pool hands the same connection (and so the same server process) to the import.
    server_before = _server_cpu(server_pid)
    result = run_import(engine, settings, ImportKind(kind), Path(path), options)
    wall = time.perf_counter() - started
    server_cpu = _server_cpu(server_pid) - server_before
    usage = resource.getrusage(resource.RUSAGE_SELF)
    engine.dispose()
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    peak_kib = usage.ru_maxrss
    print(
        json.dumps(
            {
                "kind": kind,
                "rows_read": result.rows_read,
                "rows_written": result.rows_written,
                "rows_unchanged": result.rows_unchanged,
                "holdings": result.holdings_written,
                "wall_s": round(wall, 2),
                "rows_per_s": round(result.rows_read / wall),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "cpu_s": round(cpu, 1),
                "server_cpu_s": round(server_cpu, 1) if server_pid else None,
                "load_avg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                # rows read, RSS MiB, SQLite (current, high-water) MiB, pyarrow MiB
                **({"memory_trace": trace} if trace else {}),
            }
        )
    )


def _server_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a local PostgreSQL backend process has used."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(kind: str, path: Path, url: str, diagnostics: str = "") -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.import_bench", "--child", kind, str(path), url],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "OPENBLAS_NUM_THREADS": "1",
            "FINREC_BENCH_DIAGNOSTICS": diagnostics,
        },
    )
    if completed.returncode != 0:
        sys.exit(f"{kind} import failed:\n{completed.stderr[-4000:]}")
    figures: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"  {kind:12s} {json.dumps(figures)}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="large file size")
    parser.add_argument("--small-rows", type=int, default=1_000_000, help="small file size")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=120)
    parser.add_argument("--database-url", default="sqlite", help="'sqlite' or a PostgreSQL URL")
    parser.add_argument("--scratch", type=Path, default=RESULTS / "scratch")
    parser.add_argument("--reimport", action="store_true", help="also time a second import")
    parser.add_argument(
        "--no-holdings", action="store_true", help="derive no holdings (diagnostic)"
    )
    parser.add_argument(
        "--trace-memory", action="store_true", help="RSS, SQLite and pyarrow memory per chunk"
    )
    parser.add_argument("--child", nargs=3, metavar=("KIND", "FILE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    backend = "sqlite" if args.database_url.startswith("sqlite") else "postgresql"
    args.scratch.mkdir(parents=True, exist_ok=True)
    diagnostics = ",".join(
        name
        for name, on in (("no-holdings", args.no_holdings), ("trace-memory", args.trace_memory))
        if on
    )
    runs = []
    for rows in (args.small_rows, args.rows):
        data = args.scratch / f"data_{rows}"
        if not (data / "interactions.csv").exists():
            started = time.perf_counter()
            generate(data, rows, args.customers, args.products)
            print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f}s", flush=True)
        url = fresh_database(args.database_url, args.scratch, f"{backend}_{rows}")
        print(f"{backend}, {rows:,} interaction rows:", flush=True)
        run: dict[str, object] = {
            "rows": rows,
            "file_mib": round((data / "interactions.csv").stat().st_size / 2**20, 1),
            "customers": _measure("customers", data / "customers.csv", url),
            "products": _measure("products", data / "products.csv", url),
            "interactions": _measure("interactions", data / "interactions.csv", url, diagnostics),
        }
        if args.reimport:
            run["interactions_again"] = _measure("interactions", data / "interactions.csv", url)
        runs.append(run)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "benchmark": "import",
        "backend": backend,
        "when": stamp,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": platform.python_version(),
        "diagnostics": diagnostics,
        "runs": runs,
    }
    out = RESULTS / f"import_{backend}_{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
