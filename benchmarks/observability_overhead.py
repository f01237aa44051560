"""What the observability middleware (metrics, request id, access line) adds to a request.

Protocol (the numbers in docs/observability.md come from this script):

1. Build the same synthetic SQLite bank as ``serve_bench.py`` (ALS active) and warm the profile
   cache for a pool of customers.
2. Call the ASGI apps directly in one event loop (no sockets, no HTTP parsing: what is left is
   the app's own cost, so the middleware's share is as large as it can look):
   ``bare`` (a FastAPI route returning fixed bytes), ``bare+obs`` (the same wrapped by the
   middleware), and the finrec app without the middleware, with it and the access line off, and
   with it and the access line on (JSON, written to ``/dev/null``, so formatting is paid).
3. Alternate the variants ``--repeats`` times, ``--requests`` requests each; report the median
   microseconds per request and the difference against the variant without the middleware.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/observability_overhead.py``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_bench import build_bank  # noqa: E402

from app.main import create_app  # noqa: E402
from app.observability import Metrics, Observability, configure_logging  # noqa: E402
from app.settings import Settings  # noqa: E402

ASGI = Callable[..., Any]


def bare_app(observed: bool) -> FastAPI:
    app = FastAPI()
    body = b'{"items": []}' * 50

    @app.get("/v1/customers/{customer_id}/recommendations")
    async def recommendations(customer_id: str) -> Response:
        return Response(body, media_type="application/json")

    if observed:
        app.add_middleware(Observability, metrics=Metrics(), access_log_enabled=False)
    return app


def finrec_app(url: str, artifacts: Path, *, observed: bool, access_log: bool) -> FastAPI:
    settings = Settings(
        environment="test",
        database_url=url,
        artifact_dir=artifacts,
        access_log=access_log,
        log_json=True,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings)
    if not observed:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not Observability]
    return app


async def drive(app: ASGI, paths: list[bytes], n: int) -> float:
    """Seconds per request over ``n`` direct ASGI calls."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    start = time.perf_counter()
    for i in range(n):
        path = paths[i % len(paths)]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path.decode(),
            "raw_path": path,
            "query_string": b"k=10&channel=app&placement=home",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        await app(scope, receive, send)
        sent.clear()
    return (time.perf_counter() - start) / n


async def measure(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="finrec-obs-bench-"))
    url, version = build_bank(workdir, args.customers, args.products, seed=7)
    ids = [f"C{i:07d}" for i in range(args.pool)]
    paths = [f"/v1/customers/{c}/recommendations".encode() for c in ids]
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the run

    variants: dict[str, ASGI] = {
        "bare": bare_app(False),
        "bare+obs": bare_app(True),
    }
    finrec = {
        "finrec": finrec_app(url, workdir / "artifacts", observed=False, access_log=False),
        "finrec+obs": finrec_app(url, workdir / "artifacts", observed=True, access_log=False),
        "finrec+obs+access": finrec_app(url, workdir / "artifacts", observed=True, access_log=True),
    }
    configure_logging("INFO", json=True, stream=devnull)
    contexts = [app.router.lifespan_context(app) for app in finrec.values()]
    for context in contexts:
        await context.__aenter__()
    variants.update(finrec)
    for app in variants.values():
        await drive(app, paths, max(args.pool, 500))  # warm: profile cache, label children
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, app in variants.items():
            results[name].append(await drive(app, paths, args.requests))
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)

    median = {name: statistics.median(values) * 1e6 for name, values in results.items()}
    print(f"model {version}; {args.requests} requests x {args.repeats} repeats; load: ", end="")
    print(os.getloadavg())
    print(f"{'variant':<20} {'us/request':>11} {'spread':>15} {'vs base':>9}")
    base = {"bare": "bare", "bare+obs": "bare"}
    for name, value in median.items():
        ref = median[base.get(name, "finrec")]
        spread = f"{min(results[name]) * 1e6:.1f}-{max(results[name]) * 1e6:.1f}"
        print(f"{name:<20} {value:>11.1f} {spread:>15} {value - ref:>+9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--pool", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
