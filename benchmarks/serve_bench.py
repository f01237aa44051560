"""Serving speed: finrec's recommendation endpoint against a bare FastAPI endpoint, same run.

Protocol (the numbers in docs/serving.md come from this script):

1. Build a synthetic bank in a fresh SQLite database (``--customers`` customers, ``--products``
   products across five categories and five risk levels, ~4 holdings each), fit ALS with the
   modelling library, save, register and activate the artifact.
2. Start finrec under uvicorn (one worker, uvicorn's access log off, finrec's metrics on, with
   ``FINREC_ENVIRONMENT=production`` and a real API key of scope ``recommendations:read`` made
   with ``finrec keys create``, sent on every request), once per configuration in ``--variants``
   (``finrec``: the defaults; the others turn the fast lane off and/or write exposures from a
   thread, to show what each change gives; ``finrec_uncached`` caches no profile, so every
   request reads its customer from the database, the cache-miss path; ``finrec_gc_auto`` leaves
   the garbage collector on CPython's own schedule), and two bare FastAPI
   apps (one worker each) whose ``async`` route at the same path answers with a real finrec
   response captured from the first server (same size, same ``X-Recommendation-Id`` header):
   ``bare`` returns the pre-encoded bytes (the strictest baseline), ``bare_dict`` returns the
   payload as a dict and lets FastAPI encode it (FastAPI's default path). The bare apps get
   the same key header and ignore it.
3. Drive them with ``wrk`` over loopback (``--threads`` threads, ``--connections`` connections),
   rotating over ``--pool`` customer ids (a slice are known to the database but not the model,
   so cold-start routing is exercised). A warm-up run fills each finrec's profile cache first;
   profiles then stay cached for the run unless ``--profile-ttl`` makes them expire (cache
   churn, as when most customers are seen less often than the TTL). ``--cold`` skips the
   warm-up: the first run starts on an empty cache, as after a restart under load.
4. Alternate bare / bare_dict / each finrec ``--repeats`` times for ``--duration`` seconds each;
   report RPS, latency percentiles and server CPU time per request (from /proc: all threads of
   the server and of its child processes, so the exposure writer process counts) per run, the
   full garbage collections each finrec server made during the run and how long they paused it
   (its ``finrec_gc_pause_seconds`` metric), the
   median RPS of each, the ratios, and proof that logging kept up: every server is stopped with
   SIGTERM, and the rows in the exposure log must equal the lists the servers counted in their
   own metrics.

Ports: ``--port-base`` and the next 1 + len(variants) ports.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/serve_bench.py`` (needs ``wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from fastapi import FastAPI, Response

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CATEGORIES = ["deposit", "fund", "insurance", "loan", "card"]
SEGMENTS = ["mass", "affluent", "young", "senior"]
PATH = "/v1/customers/{}/recommendations"
QUERY = "?k=10&channel=app&placement=home"

LUA = """
local ids = {}
local counter = 0
function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  counter = math.random(#ids)
end
function request()
  counter = counter % #ids + 1
  return wrk.format("GET", "/v1/customers/" .. ids[counter] .. "/recommendations__QUERY__",
                    __HEADERS__)
end
""".replace("__QUERY__", QUERY)


def lua_headers(headers: dict[str, str]) -> str:
    """A Lua table literal of request headers (the API key; the bare apps ignore it)."""
    return "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()) + "}"


def create_key(url: str, scope: str) -> str | None:
    """A real API key (the mobile backend's scope is ``recommendations:read``), made with
    ``finrec keys create`` (which prints only the key); ``None`` where there are no keys."""
    finrec = Path(sys.executable).with_name("finrec")
    out = subprocess.run(
        [str(finrec), "keys", "create", "--name", f"serve-bench-{scope}", "--scope", scope],
        cwd=ROOT,
        env={**os.environ, "FINREC_DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        print(f"no API key (auth off): {out.stderr.strip().splitlines()[-1:]}")
        return None
    return out.stdout.strip()


def bare_app() -> FastAPI:
    """The baseline: the same route shape returning a fixed body of the same size."""
    body = Path(os.environ["FINREC_BENCH_BODY"]).read_bytes()
    payload = json.loads(body)
    app = FastAPI()

    if os.environ.get("FINREC_BENCH_MODE") == "dict":
        # FastAPI's default path: return the payload, FastAPI encodes it.
        @app.get("/v1/customers/{customer_id}/recommendations")
        async def recommendations_dict(customer_id: str, response: Response) -> Any:
            response.headers["X-Recommendation-Id"] = "0" * 32
            return payload
    else:
        # The strictest baseline: pre-encoded bytes, no work at all.
        @app.get("/v1/customers/{customer_id}/recommendations")
        async def recommendations(customer_id: str) -> Response:
            return Response(
                body, media_type="application/json", headers={"X-Recommendation-Id": "0" * 32}
            )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def build_bank(workdir: Path, n_customers: int, n_products: int, seed: int) -> tuple[str, str]:
    """A migrated SQLite bank with an active ALS model; returns (database_url, version)."""
    from sqlalchemy import insert

    from app.db import migrate
    from app.db.models import Customer, Holding, Product
    from app.db.session import make_engine, make_session_factory
    from app.services import registry
    from recommenders.artifacts import save_artifact
    from recommenders.dataset import Dataset
    from recommenders.implicit_models import ALSRecommender

    rng = np.random.default_rng(seed)
    url = f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(url)
    now = datetime.now(UTC)
    products = pd.DataFrame(
        {
            "product_id": [f"P{i:04d}" for i in range(n_products)],
            "name": [f"Product {i}" for i in range(n_products)],
            "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(n_products)],
            "risk_level": [f"R{1 + rng.integers(0, 5)}" for _ in range(n_products)],
            "status": np.where(rng.random(n_products) < 0.95, "active", "retired"),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n_customers)],
            "segment": rng.choice(SEGMENTS, n_customers),
            "risk_class": [f"C{c}" for c in rng.integers(1, 6, n_customers)],
            "risk_assessed_at": [
                now - timedelta(days=int(d)) for d in rng.integers(1, 900, n_customers)
            ],
            "consent_personalization": rng.random(n_customers) < 0.95,
        }
    )
    popularity = rng.zipf(1.6, n_products).astype(float)
    popularity /= popularity.sum()
    held_rows = []
    for c in range(n_customers):
        for p in set(rng.choice(n_products, size=rng.integers(1, 8), p=popularity).tolist()):
            held_rows.append((c, p))
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(Product),
            [
                {
                    "product_id": r.product_id,
                    "name": r.name,
                    "category": r.category,
                    "risk_level": r.risk_level,
                    "status": r.status,
                    "tags": [],
                    "features": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for r in products.itertuples()
            ],
        )
        conn.execute(
            insert(Customer),
            [
                {
                    "customer_id": r.customer_id,
                    "segment": r.segment,
                    "risk_class": r.risk_class,
                    "risk_assessed_at": r.risk_assessed_at,
                    "consent_personalization": bool(r.consent_personalization),
                    "features": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for r in customers.itertuples()
            ],
        )
        conn.execute(
            insert(Holding),
            [
                {
                    "customer_pk": c + 1,
                    "product_pk": p + 1,
                    "source": "event",
                    "since": now,
                    "updated_at": now,
                }
                for c, p in held_rows
            ],
        )
    # The model sees 95% of customers; the rest exercise cold-start routing.
    known = customers.iloc[: int(n_customers * 0.95)]
    events = pd.DataFrame(
        {
            "customer_id": [customers.customer_id[c] for c, _ in held_rows],
            "product_id": [products.product_id[p] for _, p in held_rows],
            "event_type": "hold",
            "occurred_at": (now - timedelta(days=30)).isoformat(),
        }
    )
    dataset = Dataset.from_frames(known, products, events)
    model = ALSRecommender(factors=64, iterations=10).fit(dataset)
    path = save_artifact(model, workdir / "artifacts" / "als")
    with make_session_factory(engine)() as session, session.begin():
        row = registry.register_artifact(session, path)
        registry.activate(session, row.version, "als")
        version = row.version
    engine.dispose()
    return url, version


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if target.startswith("serve_bench"):
        cmd += ["--app-dir", str(ROOT / "benchmarks")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{target} did not start")


def warm_cache(port: int, customer_ids: list[str], headers: dict[str, str]) -> None:
    """One request per customer so the measured runs see a warm profile cache."""
    from concurrent.futures import ThreadPoolExecutor

    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, headers=headers) as client, ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda c: client.get(PATH.format(c) + QUERY).raise_for_status(), customer_ids)
        )


def _own_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) and of its child processes (the
    exposure writer), from /proc."""
    return _own_cpu(pid) + sum(_own_cpu(child) for child in _descendants(pid))


def wrk(
    port: int,
    script: Path,
    ids: Path,
    seconds: int,
    threads: int,
    conns: int,
    pid: int | None = None,
) -> dict[str, Any]:
    cpu_before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{conns}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(ids),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {}
    for label, value, unit in re.findall(
        r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE
    ):
        pct[f"p{label}_ms"] = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    result = {
        "rps": rps,
        **pct,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "requests": requests,
    }
    if pid:
        # Server CPU per request: the cost that decides throughput once the server owns a core,
        # and much less sensitive than RPS to other load on the machine.
        result["server_cpu_us_per_request"] = (cpu_seconds(pid) - cpu_before) / requests * 1e6
    return result


# finrec configurations measured side by side: each change on its own, and both.
VARIANTS = {
    "finrec": {},
    "finrec_thread_writer": {"FINREC_EXPOSURE_WRITER": "thread"},
    "finrec_full_route": {"FINREC_FAST_LANE": "false"},
    "finrec_before": {"FINREC_EXPOSURE_WRITER": "thread", "FINREC_FAST_LANE": "false"},
    # No profile stays cached: every request reads its customer from the database (the path of
    # a customer not seen within the cache's TTL, which is most of them in a large bank).
    "finrec_uncached": {"FINREC_PROFILE_CACHE_TTL_SECONDS": "0"},
    # The garbage collector on CPython's own schedule (no collect-and-freeze steps).
    "finrec_gc_auto": {"FINREC_GC_STEP_SECONDS": "0"},
}


def server_counts(port: int, headers: dict[str, str]) -> dict[str, float]:
    """Lists a server has answered and its exposure log counters, from its own /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers).text
    counts = {"lists": 0.0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("finrec_recommendations_total{"):
            counts["lists"] += float(value)
        elif name.startswith("finrec_exposure_"):
            counts[name.removeprefix("finrec_exposure_")] = float(value)
    return counts


def full_collections(port: int, headers: dict[str, str]) -> tuple[float, float]:
    """The server's full garbage collections so far and the seconds they paused it."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers).text
    found = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        for part in found:
            if line.startswith(f'finrec_gc_pause_seconds_{part}{{generation="2"}} '):
                found[part] = float(line.rpartition(" ")[2])
    return found["count"], found["sum"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--pool", type=int, default=5_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up of the finrec servers: the first run starts on an empty profile cache "
        "(a restart under load; with --pool above the cache size, every later run evicts)",
    )
    parser.add_argument(
        "--profile-ttl",
        type=float,
        default=3600.0,
        help="profile cache TTL of the finrec servers (default: the whole run, a steady state; "
        "shorter: cache churn, as with a large customer base)",
    )
    parser.add_argument("--port-base", type=int, default=8880, help="first of 2 + variants ports")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"finrec configurations to measure, comma-separated ({', '.join(VARIANTS)})",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve_bench.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required (Debian: apt-get install -y wrk)")
    variants = [v for v in args.variants.split(",") if v]
    assert variants and variants[0] == "finrec" and set(variants) <= set(VARIANTS), variants

    workdir = Path(tempfile.mkdtemp(prefix="finrec-serve-bench-"))
    t0 = time.perf_counter()
    url, version = build_bank(workdir, args.customers, args.products, args.seed)
    print(f"bank and model ready in {time.perf_counter() - t0:.1f}s: {version}")
    key = create_key(url, "recommendations:read")
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    admin_key = create_key(url, "admin")  # for /metrics only
    admin = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
    rng = np.random.default_rng(args.seed)
    pool = rng.choice(args.customers, size=min(args.pool, args.customers), replace=False)
    ids = workdir / "ids.txt"
    ids.write_text("\n".join(f"C{i:07d}" for i in pool) + "\n")
    script = workdir / "rotate.lua"
    script.write_text(LUA.replace("__HEADERS__", lua_headers(auth)))

    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "FINREC_DATABASE_URL": url,
        "FINREC_ENVIRONMENT": "production",  # auth on, no admin header, like a deployment
        "FINREC_SECRET_KEY": "serve-bench-" + os.urandom(8).hex(),
        "FINREC_ARTIFACT_DIR": str(workdir / "artifacts"),
        "FINREC_LOG_LEVEL": "WARNING",
        # By default the steady state: profiles stay cached for the whole run (a miss is one
        # database read, a separate cost from the hot path); --profile-ttl makes them churn.
        "FINREC_PROFILE_CACHE_TTL_SECONDS": str(args.profile_ttl),
    }
    ports = {"bare": args.port_base, "bare_dict": args.port_base + 1}
    ports.update({name: args.port_base + 2 + i for i, name in enumerate(variants)})
    servers: dict[str, subprocess.Popen[bytes]] = {}
    counts: dict[str, dict[str, float]] = {}
    try:
        for name in variants:
            servers[name] = start("app.main:create_app", ports[name], {**env, **VARIANTS[name]})
        finrec_port = ports["finrec"]
        sample = httpx.get(
            f"http://127.0.0.1:{finrec_port}{PATH.format(ids.read_text().split()[0])}{QUERY}",
            headers=auth,
        )
        sample.raise_for_status()
        assert sample.json()["served_from"] == "live", sample.json()
        body = workdir / "body.json"
        body.write_bytes(sample.content)
        bare_env = {**env, "FINREC_BENCH_BODY": str(body)}
        servers["bare"] = start("serve_bench:bare_app", ports["bare"], bare_env)
        servers["bare_dict"] = start(
            "serve_bench:bare_app", ports["bare_dict"], {**bare_env, "FINREC_BENCH_MODE": "dict"}
        )
        order = ["bare", "bare_dict", *variants]
        for name in variants if not args.cold else []:
            warm_cache(ports[name], ids.read_text().split(), auth)
            warm = wrk(ports[name], script, ids, 5, args.threads, args.connections)
            print(f"warm-up {name}: {warm}")
        for name in ("bare", "bare_dict"):
            wrk(ports[name], script, ids, 3, args.threads, args.connections)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
        for rep in range(args.repeats):
            for name in order:
                finrec = name in variants
                gc_before = full_collections(ports[name], admin) if finrec else None
                result = wrk(
                    ports[name],
                    script,
                    ids,
                    args.duration,
                    args.threads,
                    args.connections,
                    servers[name].pid,
                )
                result["load_avg_1m"] = os.getloadavg()[0]
                if gc_before is not None:
                    # Full collections during the run (each pauses every request in flight).
                    count, paused = full_collections(ports[name], admin)
                    result["full_gc"] = count - gc_before[0]
                    result["full_gc_pause_ms"] = round((paused - gc_before[1]) * 1e3, 1)
                runs[name].append(result)
                print(f"run {rep + 1} {name}: {result}")
        counts = {name: server_counts(ports[name], admin) for name in variants}
    finally:
        # SIGTERM: a graceful shutdown, which must write every exposure row still queued.
        for proc in servers.values():
            proc.terminate()
        for proc in servers.values():
            proc.wait()

    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        exposures = int(conn.execute(text("SELECT count(*) FROM exposures")).scalar_one())
    engine.dispose()
    median = {name: statistics.median(r["rps"] for r in results) for name, results in runs.items()}
    bare_rps, finrec_rps = median["bare"], median["finrec"]
    lists_served = int(sum(c["lists"] for c in counts.values()))
    summary = {
        "protocol": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "response_bytes": len(sample.content),
        "runs": runs,
        "median_rps": median,
        "ratio": finrec_rps / bare_rps,
        "ratio_vs_bare_dict": finrec_rps / median["bare_dict"],
        "ratios": {name: median[name] / bare_rps for name in variants},
        "p99_ms": {name: [r.get("p99_ms") for r in runs[name]] for name in runs},
        "median_server_cpu_us_per_request": {
            name: statistics.median(r["server_cpu_us_per_request"] for r in runs[name])
            for name in runs
        },
        "finrec_p99_ms_max": max(r.get("p99_ms", float("nan")) for r in runs["finrec"]),
        "exposure_rows_written": exposures,
        # Lists served (each server's own counter, warm-up included) against rows in the log
        # after every server was stopped with SIGTERM: equal when nothing was lost.
        "lists_served": lists_served,
        "server_counts_before_stop": counts,
        "auth": bool(key),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "median_rps",
                    "ratio",
                    "ratios",
                    "p99_ms",
                    "ratio_vs_bare_dict",
                    "finrec_p99_ms_max",
                    "median_server_cpu_us_per_request",
                    "exposure_rows_written",
                    "lists_served",
                    "auth",
                )
            },
            indent=2,
        )
    )
    if os.environ.get("FINREC_BENCH_KEEP"):
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
