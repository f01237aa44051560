"""Synthetic bank generator speed and memory.

Runs ``finrec generate`` semantics (``BankStream`` + ``write_stream``) in a child process per
measurement, so peak RSS belongs to that run alone, and reports wall time, CPU time, rows/s and
peak RSS. The machine is shared in some setups, so the load average before and after each run is
recorded too: CPU time is the steadier figure when other work competes for the cores.
Results go to ``benchmarks/results/generate_<time>.json``.

    python -m benchmarks.generate_bench                       # 1,000,000 customers, CSV
    python -m benchmarks.generate_bench --customers 100000 --format parquet --repeat 3
    python -m benchmarks.generate_bench --events-per-customer 40   # memory vs. log length
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
END_DATE = "2025-06-01"


def _child(customers: int, seed: int, fmt: str, out: Path, events: float) -> None:
    """One measured run; prints its figures as one JSON line."""
    from app.synth import BankStream, SynthConfig, write_stream

    started = time.perf_counter()
    cpu_started = time.process_time()
    end = dt.date.fromisoformat(END_DATE)
    config = SynthConfig(customers, seed, end_date=end, events_per_customer=events)
    stream = BankStream(config)
    drawn = time.perf_counter()
    written = write_stream(stream, out, fmt)  # type: ignore[arg-type]
    wall = time.perf_counter() - started
    rows = {w.table: w.rows for w in written}
    figures = {
        "customers": customers,
        "seed": seed,
        "format": fmt,
        "rows": rows,
        "events_per_customer": round(rows["interactions"] / customers, 2),
        "wall_s": round(wall, 2),
        "setup_wall_s": round(drawn - started, 2),
        "cpu_s": round(time.process_time() - cpu_started, 2),
        "interaction_rows_per_s": round(rows["interactions"] / wall),
        "bytes": {w.table: w.bytes for w in written},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures))


def _measure(
    customers: int, seed: int, fmt: str, keep: Path | None, events: float
) -> dict[str, object]:
    out = keep or Path(tempfile.mkdtemp(prefix="finrec-generate-bench-"))
    load_before = os.getloadavg()
    command = [
        sys.executable,
        "-m",
        "benchmarks.generate_bench",
        "--child",
        "--customers",
        str(customers),
        "--seed",
        str(seed),
        "--format",
        fmt,
        "--out",
        str(out),
        "--events-per-customer",
        str(events),
    ]
    try:
        completed = subprocess.run(command, check=True, capture_output=True, text=True)
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)
    figures: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    figures["load_average_before"] = [round(x, 2) for x in load_before]
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1, help="measured runs")
    parser.add_argument("--out", type=Path, help="keep the files here (default: deleted)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.customers, args.seed, args.format, args.out, args.events_per_customer)
        return

    runs = []
    for index in range(args.repeat):
        figures = _measure(
            args.customers, args.seed, args.format, args.out, args.events_per_customer
        )
        runs.append(figures)
        print(f"run {index + 1}: {json.dumps(figures)}", flush=True)
    report = {
        "benchmark": "generate",
        "command": " ".join(["python -m benchmarks.generate_bench", *sys.argv[1:]]),
        "end_date": END_DATE,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"generate_{args.format}_{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
