"""Crash safety: ``kill -9`` in the middle of a run, rerun the same command, get the same rows.

The command runs in a subprocess that is killed with SIGKILL once a few chunks are committed;
the API's reader must keep answering from the previous complete batch meanwhile. The rerun
must resume (not start over) and end with exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.db.models import Batch, BatchChunk, PrecomputedRecommendation
from app.jobs.precompute import PrecomputeOptions, run_precompute
from app.services.batches import BatchReader
from app.settings import Settings
from tests.app.jobs.precompute_bank import AS_OF, publish_als, seed_bank

ROOT = Path(__file__).resolve().parents[3]
ARGS = ["--k", "6", "--chunk-size", "20", "--as-of", AS_OF.strftime("%Y-%m-%dT%H:%M:%S")]


def env(database_url: str, artifacts: Path) -> dict[str, str]:
    return {
        "FINREC_DATABASE_URL": database_url,
        "FINREC_ARTIFACT_DIR": str(artifacts),
        "FINREC_DEFAULT_STRATEGY": "als",
    }


def command(database_url: str, artifacts: Path, *extra: str) -> subprocess.Popen[str]:
    variables = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "precompute", *ARGS, *extra],
        cwd=ROOT,
        env={**variables, **env(database_url, artifacts)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def chunks_in(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(BatchChunk)).scalar_one())


def rows_of(engine: Engine, batch_id: str) -> list[tuple[object, ...]]:
    t = PrecomputedRecommendation
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(t.customer_id, t.rank, t.product_id, t.score, t.reason_codes)
                .where(t.batch_id == batch_id)
                .order_by(t.customer_id, t.rank)
            )
        ]


def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_rows(
    database_url: str,
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    artifacts = tmp_path / "artifacts"
    publish_als(session_factory, seed_bank(session_factory), artifacts / "als")
    settings = Settings(
        environment="test",
        database_url=database_url,
        artifact_dir=artifacts,
        default_strategy="als",
        _env_file=None,  # type: ignore[call-arg]
    )
    # A previous complete batch is what the API serves while the new one is being written.
    previous = run_precompute(engine, settings, PrecomputeOptions(k=4, chunk_size=240, as_of=AS_OF))
    reader = BatchReader(session_factory, refresh_seconds=0)
    before = chunks_in(engine)

    victim = command(database_url, artifacts, "--throttle", "0.4")
    deadline = time.monotonic() + 60
    while chunks_in(engine) < before + 3:
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "no chunk was committed in time"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    with engine.connect() as conn:
        running = conn.execute(select(Batch).where(Batch.status == "running")).one()
    committed = chunks_in(engine) - before
    assert 3 <= committed < running.chunks_total
    assert reader.current()["als"][0] == previous.batch_id  # the API never sees the half batch

    # The same command again (in this process: a second interpreter start costs seconds).
    rerun = CliRunner(env=env(database_url, artifacts)).invoke(cli, ["precompute", *ARGS])
    assert rerun.exit_code == 0, rerun.output
    summary = json.loads(rerun.stderr.strip().splitlines()[-1])
    assert summary["event"] == "summary" and summary["complete"] is True
    assert summary["batch_id"] == running.batch_id
    assert summary["chunks_resumed"] == committed
    assert reader.current()["als"][0] == running.batch_id
    resumed = rows_of(engine, running.batch_id)

    # The same batch computed without interruption, in a clean slate, row for row.
    with engine.begin() as conn:
        for table in (PrecomputedRecommendation, BatchChunk):
            conn.execute(delete(table).where(table.batch_id == running.batch_id))
        conn.execute(delete(Batch).where(Batch.batch_id == running.batch_id))
    clean = run_precompute(engine, settings, PrecomputeOptions(k=6, chunk_size=20, as_of=AS_OF))
    assert clean.batch_id == running.batch_id and clean.chunks_resumed == 0
    assert rows_of(engine, clean.batch_id) == resumed
    assert len(resumed) == clean.rows > 0


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--shard", "3/2"], 2), (["--export", "lists.txt"], 2), (["--strategy", "nope"], 4)],
)
def test_refusals_exit_with_documented_codes(
    database_url: str, tmp_path: Path, args: list[str], code: int
) -> None:
    result = CliRunner(env=env(database_url, tmp_path)).invoke(cli, ["precompute", *ARGS, *args])
    assert result.exit_code == code
    assert "error:" in result.stderr
