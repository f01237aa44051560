"""Start and stop a finrec server the way ``make demo`` does, on a suite-owned database and port.

Each suite gets its own folder under ``var/suites/<name>``: database (unless a URL is given),
generated bank and artifacts, so suites never touch the demo's files or each other's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
FINREC = str(BIN / "finrec") if (BIN / "finrec").exists() else "finrec"


def finrec_command(*args: str, env: dict[str, str], timeout: float = 300) -> str:
    """Run ``finrec ARGS`` with ``env``; returns stdout, raises with stderr on failure."""
    done = subprocess.run(
        [FINREC, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"finrec {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


@dataclass
class DemoServer:
    """``scripts/demo.sh`` (migrate, generate, import, train, precompute, serve) in a subprocess.

    ``extra_env`` adds ``FINREC_*`` settings for the server (a short cache TTL, say).
    """

    name: str
    port: int
    customers: int = int(os.environ.get("DEMO_CUSTOMERS", "2000"))
    database_url: str | None = None
    algorithms: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    fresh: bool = True
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.workdir = ROOT / "var" / "suites" / self.name
        self.log_path = self.workdir / "server.log"
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.workdir / 'finrec.db'}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment every ``finrec`` command of this suite runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINREC_")}
        env.update(
            FINREC_DATABASE_URL=str(self.database_url),
            FINREC_ARTIFACT_DIR=str(self.workdir / "artifacts"),
            FINREC_PORT=str(self.port),
            FINREC_HOST="127.0.0.1",
            DEMO_DIR=str(self.workdir / "demo"),
            DEMO_CUSTOMERS=str(self.customers),
            OPENBLAS_NUM_THREADS="1",
            FINREC_LOG_LEVEL="WARNING",
            FINREC_ACCESS_LOG="false",
        )
        if self.algorithms:
            env["DEMO_ALGORITHMS"] = self.algorithms
        env.update(self.extra_env)
        return env

    def start(self, *, timeout: float = 600) -> None:
        """Run the demo script and wait until ``/readyz`` answers 200."""
        if self.fresh and self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawn([str(ROOT / "scripts" / "demo.sh")])
        self.wait_ready(timeout)

    def serve(self, *, timeout: float = 120) -> None:
        """Start only the server (``finrec serve``) on what an earlier ``start`` prepared."""
        self._spawn([FINREC, "serve", "--host", "127.0.0.1", "--port", str(self.port)])
        self.wait_ready(timeout)

    def _spawn(self, argv: list[str]) -> None:
        log = self.log_path.open("ab")
        # A session of its own, so a stray child can be stopped with the group, never by name.
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready after {timeout:.0f} s; see {self.log_path}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def create_key(self, name: str, *scopes: str) -> str:
        """``finrec keys create`` against this server's database; returns the key."""
        args = ["keys", "create", "--name", name]
        for scope in scopes:
            args += ["--scope", scope]
        return finrec_command(*args, env=self.env).strip()

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator sends it; does not wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Stop the server and anything it started (its own process group only)."""
        if self.process is None:
            return
        self.terminate()
        if self.wait(30) is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # children left behind share the group
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
