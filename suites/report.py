"""Pass/fail bookkeeping shared by the suites: every check prints one line, the exit status
says whether all passed."""

from __future__ import annotations

import os
import sys


class Report:
    """Collects named checks; :meth:`finish` prints the summary and returns the exit status."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.results: list[tuple[str, bool, str]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}", flush=True)
        return ok

    def info(self, line: str) -> None:
        print(f"  {line}", flush=True)

    def finish(self) -> int:
        failed = [name for name, ok, _ in self.results if not ok]
        load = os.getloadavg()
        print(
            f"\n{self.title}: {len(self.results) - len(failed)}/{len(self.results)} checks passed"
            f" (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs)"
        )
        for name in failed:
            print(f"  failed: {name}")
        print("RESULT:", "PASS" if not failed else "FAIL", flush=True)
        return 0 if not failed else 1


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)
    sys.stdout.flush()
