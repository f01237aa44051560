"""What API-key authentication adds to a recommendation request on the hot path.

Protocol (the numbers in docs/security.md come from this script):

1. Build the same synthetic SQLite bank as ``serve_bench.py`` (ALS active), store one
   ``recommendations:read`` key and warm the profile cache and the key cache.
2. Call the ASGI apps directly in one event loop (no sockets, no HTTP parsing, observability
   middleware removed, so auth's share is as large as it can look): ``auth off``
   (``FINREC_AUTH_ENABLED=false``: the guard returns at once), ``auth on`` (a real key, cache
   hit), and ``auth on + rate limit`` (the token bucket too, a limit never reached).
3. Alternate the variants ``--repeats`` times, ``--requests`` requests each; report the median
   microseconds per request and the difference against ``auth off``. Also time the guard alone
   (:func:`app.api.auth.check` on a cache hit) in a tight loop.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/auth_overhead.py``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from observability_overhead import drive  # noqa: E402
from serve_bench import build_bank  # noqa: E402

from app.api.auth import check  # noqa: E402
from app.db.session import make_engine, make_session_factory  # noqa: E402
from app.main import create_app  # noqa: E402
from app.observability import Observability, configure_logging  # noqa: E402
from app.services.keys import create_key  # noqa: E402
from app.settings import Settings  # noqa: E402


def app_for(url: str, artifacts: Path, **overrides: Any) -> FastAPI:
    settings = Settings(
        environment="test",
        database_url=url,
        artifact_dir=artifacts,
        access_log=False,
        exposure_writer="thread",
        _env_file=None,  # type: ignore[call-arg]
        **overrides,
    )
    app = create_app(settings)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not Observability]
    return app


def with_header(app: FastAPI, token: str) -> Any:
    """The app, called with ``Authorization: Bearer token`` added to every scope."""
    header = (b"authorization", f"Bearer {token}".encode())

    async def call(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["headers"] = [*scope["headers"], header]
        await app(scope, receive, send)

    return call


async def guard_alone(app: FastAPI, token: str, n: int) -> float:
    """Seconds per :func:`check` call on a cache hit (the guard's whole hot-path work)."""
    scope = {
        "type": "http",
        "app": app,
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "state": {},
    }
    request = Request(scope)
    await check(request, "recommendations:read", token)  # fill the cache
    start = time.perf_counter()
    for _ in range(n):
        await check(request, "recommendations:read", token)
    return (time.perf_counter() - start) / n


async def measure(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="finrec-auth-bench-"))
    url, version = build_bank(workdir, args.customers, args.products, seed=7)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        _, token = create_key(session, "bench", ["recommendations:read"])
    engine.dispose()
    paths = [f"/v1/customers/C{i:07d}/recommendations".encode() for i in range(args.pool)]
    artifacts = workdir / "artifacts"
    apps = {
        "auth off": app_for(url, artifacts, auth_enabled=False),
        "auth on": app_for(url, artifacts),
        "auth on + rate limit": app_for(
            url, artifacts, rate_limit_per_second=1e9, rate_limit_burst=1_000_000
        ),
    }
    configure_logging("WARNING", json=True)
    contexts = [app.router.lifespan_context(app) for app in apps.values()]
    for context in contexts:
        await context.__aenter__()
    variants = {name: with_header(app, token) for name, app in apps.items()}
    for call in variants.values():
        await drive(call, paths, max(args.pool, 500))  # warm: profiles, key cache
    results: dict[str, list[float]] = {name: [] for name in variants}
    guard: list[float] = []
    guard_off: list[float] = []
    for _ in range(args.repeats):
        for name, call in variants.items():
            results[name].append(await drive(call, paths, args.requests))
        guard.append(await guard_alone(apps["auth on"], token, args.requests * 10))
        guard_off.append(await guard_alone(apps["auth off"], token, args.requests * 10))
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)

    median = {name: statistics.median(values) * 1e6 for name, values in results.items()}
    print(f"model {version}; {args.requests} requests x {args.repeats} repeats; ", end="")
    print(f"load: {os.getloadavg()}")
    best = {name: min(values) * 1e6 for name, values in results.items()}
    print(f"{'variant':<22} {'median us':>10} {'vs off':>8} {'best us':>9} {'vs off':>8}")
    for name, value in median.items():
        print(
            f"{name:<22} {value:>10.1f} {value - median['auth off']:>+8.1f} "
            f"{best[name]:>9.1f} {best[name] - best['auth off']:>+8.1f}"
        )
    on, off = statistics.median(guard) * 1e6, statistics.median(guard_off) * 1e6
    print(
        f"guard alone, median us/call: cache hit {on:.2f}, auth off {off:.2f}, added {on - off:.2f}"
    )
    on, off = min(guard) * 1e6, min(guard_off) * 1e6
    print(
        f"guard alone, best us/call:   cache hit {on:.2f}, auth off {off:.2f}, added {on - off:.2f}"
    )


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
