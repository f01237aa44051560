"""``make fuzz``: schemathesis against the committed ``openapi.yaml`` and a running server.

The server is the demo service (``scripts/demo.sh``, small bank) on a loopback port; every
operation is called with generated valid and invalid data and an admin key. Passes when there
are no server errors and no answer breaks the schema (status code, content type, headers,
body). Overrides: ``FUZZ_EXAMPLES`` (per operation, default 100), ``FUZZ_SECONDS`` (time budget,
default 600), ``DEMO_CUSTOMERS`` (default 500), ``FUZZ_PORT``.
"""

from __future__ import annotations

import os
import subprocess
import sys

from suites.report import Report, env_int, section
from suites.server import BIN, ROOT, DemoServer

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def main() -> int:
    examples = env_int("FUZZ_EXAMPLES", 100)
    seconds = env_int("FUZZ_SECONDS", 600)
    server = DemoServer(
        "fuzz", port=env_int("FUZZ_PORT", 8841), customers=env_int("DEMO_CUSTOMERS", 500)
    )
    report = Report("fuzz")
    try:
        section(f"starting the demo service ({server.customers} customers) on {server.base_url}")
        server.start()
        key = server.create_key("fuzz", "admin")
        section(f"schemathesis: openapi.yaml, {examples} examples per operation, {seconds} s")
        command = [
            str(BIN / "schemathesis"),
            "run",
            str(ROOT / "openapi.yaml"),
            "--url",
            server.base_url,
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(examples),
            "--max-time",
            str(seconds),
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--seed",
            os.environ.get("FUZZ_SEED", "7"),
        ]
        done = subprocess.run(command, cwd=ROOT, timeout=seconds + 300, check=False)
        report.check(
            "schemathesis found no failures", done.returncode == 0, f"exit status {done.returncode}"
        )
        log = server.tail(2000)
        tracebacks = log.count("Traceback")
        report.check("no tracebacks in the server log", tracebacks == 0, str(tracebacks))
    except Exception as exc:  # a suite that cannot run fails, with the reason
        report.check("suite ran", False, f"{type(exc).__name__}: {exc}")
    finally:
        server.stop()
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
