"""``make faults``: the service under load while things break.

(a) database down: the service runs against PostgreSQL through :class:`~suites.proxy.TcpProxy`;
    the proxy is cut in the middle of load and restored. Every answer must stay 200; answers
    during the outage must be the fail-closed fallback (``degraded: true``) and answers after
    it non-degraded again. The profile cache is off (``FINREC_PROFILE_CACHE_SIZE=0``) so every
    request needs the database. Skipped, and said so, when no PostgreSQL is reachable.
(b) corrupt artifact: a new popularity version is trained, one of its files corrupted, and its
    activation asked for in the middle of load: the activation must be refused (409), every
    answer 200, and the old version must keep serving the strategy.
(c) SIGTERM under load: the server is terminated while clients are sending; after it exits,
    the exposure rows it wrote must number exactly the 200 recommendation answers received.
Overrides: ``FAULTS_PG_URL`` (a server to create a scratch database on), ``FAULTS_CLIENTS``,
``DEMO_CUSTOMERS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db.session import make_engine
from suites.policy import PolicyReference
from suites.proxy import TcpProxy
from suites.report import Report, env_int, section
from suites.server import DemoServer, finrec_command
from suites.traffic import Traffic

PG_URL = os.environ.get("FAULTS_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "finrec_suite_faults"
PROXY_PORT = env_int("FAULTS_PROXY_PORT", 15432)
CLIENTS = env_int("FAULTS_CLIENTS", 50)
ALGORITHMS = os.environ.get("FAULTS_ALGORITHMS", "popularity itemknn fusion")


def count_rows(database_url: str, table: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def settled_count(database_url: str, table: str, quiet_seconds: float = 3.0) -> int:
    """The row count once it stops moving (buffered writes have landed)."""
    last = count_rows(database_url, table)
    for _ in range(20):
        time.sleep(quiet_seconds)
        now = count_rows(database_url, table)
        if now == last:
            return now
        last = now
    return last


# ---- (a) database down ------------------------------------------------------------------------


def _pg_admin() -> object | None:
    try:
        engine = make_engine(
            PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return engine
    except Exception:
        return None


def database_down(report: Report) -> None:
    section("(a) database stopped in the middle of load (PostgreSQL behind a TCP proxy)")
    admin = _pg_admin()
    if admin is None:
        report.info(
            f"SKIPPED: no PostgreSQL reachable at {make_url(PG_URL).host}; see docs/suites.md"
        )
        return
    target = make_url(PG_URL)
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    proxy = TcpProxy(PROXY_PORT, target.host or "127.0.0.1", target.port or 5432)
    proxy.start()
    through_proxy = target.set(port=PROXY_PORT, database=PG_DATABASE)
    server = DemoServer(
        "faults-db",
        port=env_int("FAULTS_DB_PORT", 8842),
        database_url=through_proxy.render_as_string(hide_password=False),
        algorithms=ALGORITHMS,
        extra_env={"FINREC_PROFILE_CACHE_SIZE": "0"},
    )
    try:
        server.start()
        key = server.create_key("faults", "recommendations:read")
        reference = PolicyReference.load(str(server.database_url))
        traffic = Traffic(
            server.base_url,
            key,
            reference,
            clients=CLIENTS,
            seconds=40,
            events_share=0.0,
            similar_share=0.0,
        )

        async def drive() -> tuple[float, float]:
            run = asyncio.create_task(traffic.run())
            await asyncio.sleep(10)
            down_at = time.monotonic()
            await asyncio.to_thread(proxy.down)
            await asyncio.sleep(10)
            up_at = time.monotonic()
            await asyncio.to_thread(proxy.up)
            await run
            return down_at, up_at

        down_at, up_at = asyncio.run(drive())
        stats = traffic.stats
        for line in stats.summary():
            report.info(line)
        samples = stats.samples
        during = [s for s in samples if down_at + 1.0 <= s.at <= up_at]
        after = [s for s in samples if s.at >= up_at + 5.0]
        before = [s for s in samples if s.at < down_at]
        report.check("(a) no 5xx", stats.server_errors == 0, str(stats.server_errors))
        report.check("(a) no connection errors", not stats.errors, str(dict(stats.errors)))
        report.check(
            "(a) every answer 200", all(s.status == 200 for s in samples), f"{len(samples)} answers"
        )
        report.check(
            "(a) before the outage: not degraded",
            bool(before) and not any(s.degraded for s in before),
            f"{len(before)} answers",
        )
        degraded = sum(1 for s in during if s.degraded)
        report.check(
            "(a) during the outage: degraded fallback",
            bool(during) and degraded == len(during),
            f"{degraded}/{len(during)} degraded",
        )
        recovered = sum(1 for s in after if s.degraded is False)
        report.check(
            "(a) after it returns: not degraded",
            bool(after) and recovered == len(after),
            f"{recovered}/{len(after)} non-degraded",
        )
        report.check(
            "(a) every item obeys the policy",
            not stats.violations,
            "; ".join(stats.violations[:3]) or f"{stats.checked_items} items",
        )
    finally:
        server.stop()
        proxy.close()
        with admin.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        admin.dispose()  # type: ignore[attr-defined]


# ---- (b) corrupt artifact ---------------------------------------------------------------------


def _active_version(server: DemoServer, admin: dict[str, str], strategy: str) -> str | None:
    body = httpx.get(f"{server.base_url}/v1/models", headers=admin, timeout=30).json()
    for entry in body.get("activations", []):
        if entry.get("strategy") == strategy:
            return str(entry["version"])
    return None


def corrupt_activation(report: Report, server: DemoServer, admin_key: str) -> None:
    section("(b) activating a corrupt artifact under load")
    admin = {"Authorization": f"Bearer {admin_key}"}
    old = _active_version(server, admin, "popularity")
    finrec_command("train", "--algorithm", "popularity", env=server.env)
    with contextlib.closing(make_engine(str(server.database_url)).connect()) as conn:
        version, path = conn.execute(
            text(
                "SELECT version, artifact_path FROM model_versions WHERE algorithm = 'popularity'"
                " ORDER BY created_at DESC LIMIT 1"
            )
        ).one()
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and p.suffix == ".npz")
    target = files[0] if files else sorted(p for p in Path(path).rglob("*") if p.is_file())[0]
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    target.write_bytes(bytes(data))
    report.info(f"new version {version}: corrupted {target.name}; serving {old}")
    reference = PolicyReference.load(str(server.database_url))
    traffic = Traffic(
        server.base_url,
        admin_key,
        reference,
        clients=CLIENTS,
        seconds=20,
        extra_query={"strategy": "popularity"},
    )

    async def drive() -> httpx.Response:
        run = asyncio.create_task(traffic.run())
        await asyncio.sleep(6)
        async with httpx.AsyncClient(base_url=server.base_url, headers=admin, timeout=60) as c:
            answer = await c.post(f"/v1/models/{version}/activate", json={})
        await run
        return answer

    answer = asyncio.run(drive())
    stats = traffic.stats
    for line in stats.summary():
        report.info(line)
    report.check(
        "(b) activation refused (409 or 422 problem+json)",
        answer.status_code in (409, 422)
        and answer.headers.get("content-type", "").startswith("application/problem+json"),
        f"{answer.status_code} {answer.text[:160]}",
    )
    report.check(
        "(b) no 5xx and no connection errors",
        stats.server_errors == 0 and not stats.errors,
        f"5xx {stats.server_errors}, errors {dict(stats.errors)}",
    )
    # A customer the model cannot personalise for (no consent) gets a list without a version.
    versions = {s.model_version for s in stats.samples if s.status == 200} - {None}
    report.check(
        "(b) the old version kept serving",
        versions == {old} and old is not None,
        f"served {sorted(v or '-' for v in versions)}",
    )
    report.check(
        "(b) the registry still names the old version",
        _active_version(server, admin, "popularity") == old,
    )


# ---- (c) SIGTERM under load -------------------------------------------------------------------


def sigterm_drain(report: Report, server: DemoServer, key: str) -> None:
    section("(c) SIGTERM under load: drain and flush")
    url = str(server.database_url)
    before = settled_count(url, "exposures")
    reference = PolicyReference.load(url)
    traffic = Traffic(
        server.base_url,
        key,
        reference,
        clients=CLIENTS * 2,
        seconds=60,
        events_share=0.0,
        similar_share=0.0,
        stop_on_refusal=True,
    )

    async def drive() -> None:
        run = asyncio.create_task(traffic.run())
        await asyncio.sleep(8)
        server.terminate()
        await run

    asyncio.run(drive())
    code = server.wait(120)
    after = count_rows(url, "exposures")
    stats = traffic.stats
    for line in stats.summary():
        report.info(line)
    served = stats.count("recommendations", 200)
    # uvicorn re-raises the signal once it has shut down, so the status is -SIGTERM (or 0).
    finished = "Application shutdown complete" in server.tail(200)
    report.check(
        "(c) server drained and shut down after SIGTERM",
        code in (0, -signal.SIGTERM) and finished,
        f"exit status {code}, shutdown complete: {finished}",
    )
    report.check("(c) no 5xx", stats.server_errors == 0, str(stats.server_errors))
    unexpected = {k: n for k, n in stats.errors.items() if k != "ConnectError"}
    report.info(
        f"refused after the listener closed: {stats.errors.get('ConnectError', 0)}; "
        f"dropped keep-alive connections: {unexpected or 0}"
    )
    report.check(
        "(c) exposure rows == 200 recommendation answers",
        after - before == served,
        f"{after - before} rows for {served} answers",
    )


def main() -> int:
    report = Report("faults")
    try:
        database_down(report)
    except Exception as exc:
        report.check("(a) ran", False, f"{type(exc).__name__}: {exc}")
    server = DemoServer(
        "faults",
        port=env_int("FAULTS_PORT", 8843),
        algorithms=ALGORITHMS,
        extra_env={"FINREC_LOG_LEVEL": "INFO"},  # the shutdown lines prove the drain ran
    )
    try:
        section(f"starting the demo service ({server.customers} customers) on {server.base_url}")
        server.start()
        admin_key = server.create_key("faults-admin", "admin")
        read_key = server.create_key("faults-read", "recommendations:read")
        corrupt_activation(report, server, admin_key)
        sigterm_drain(report, server, read_key)
    except Exception as exc:  # a suite that cannot run fails, with the reason
        report.check("(b, c) ran", False, f"{type(exc).__name__}: {exc}")
    finally:
        server.stop()
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
