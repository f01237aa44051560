"""``make load``: 200 concurrent clients for 60 s against the service ``make demo`` runs.

Passes when no answer is a 5xx, no connection fails and every served item obeys the policy
(active, suitable for the customer's effective risk class, not held), with the database as the
reference. Overrides: ``LOAD_CLIENTS``, ``LOAD_SECONDS``, ``DEMO_CUSTOMERS``, ``LOAD_PORT``.
"""

from __future__ import annotations

import asyncio
import sys

from suites.policy import PolicyReference
from suites.report import Report, env_float, env_int, section
from suites.server import DemoServer
from suites.traffic import Traffic


def main() -> int:
    clients = env_int("LOAD_CLIENTS", 200)
    seconds = env_float("LOAD_SECONDS", 60.0)
    server = DemoServer("load", port=env_int("LOAD_PORT", 8840))
    report = Report("load")
    try:
        section(f"starting the demo service ({server.customers} customers) on {server.base_url}")
        server.start()
        key = server.create_key("load", "recommendations:read", "events:write")
        reference = PolicyReference.load(str(server.database_url))
        section(f"{clients} clients for {seconds:.0f} s")
        traffic = Traffic(server.base_url, key, reference, clients=clients, seconds=seconds)
        stats = asyncio.run(traffic.run())
        for line in stats.summary():
            report.info(line)
        recs = stats.count("recommendations", 200)
        report.check("recommendations served", recs > 0, f"{recs} lists")
        report.check("no 5xx", stats.server_errors == 0, str(stats.server_errors))
        other = {f"{k} {s}": n for (k, s), n in stats.statuses.items() if s != 200}
        report.check("every answer 200", not other, str(other or "all 200"))
        report.check("no connection errors", not stats.errors, str(dict(stats.errors)))
        report.check(
            "every item obeys the policy",
            not stats.violations and stats.checked_items > 0,
            "; ".join(stats.violations[:5]) or f"{stats.checked_items} items",
        )
    except Exception as exc:  # a suite that cannot run fails, with the reason
        report.check("suite ran", False, f"{type(exc).__name__}: {exc}")
    finally:
        server.stop()
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
