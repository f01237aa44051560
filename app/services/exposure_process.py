"""The exposure (decision) log written by a child process fed through a pipe.

:class:`~app.services.exposures.ExposureLog` writes from a thread of the serving process, so
every flush competes with the event loop for the interpreter lock. :class:`ExposureProcessLog`
keeps the same interface and guarantees but moves the database work out of the process:

- ``record_later`` is still a deque append. Every few milliseconds the event loop pickles what
  is queued (the builder by reference, the plain values as they are: pickle round-trips
  ``datetime`` and ``bytes`` exactly, which JSON would not) and writes it to the child's stdin
  as one numbered frame; the pipe is non-blocking, and a child that falls behind simply leaves
  rows in the bounded buffer.
- The child (``python -m app.services.exposure_process``) builds the rows with the same builder
  and writes them with the same insert as the in-process log, in one transaction per
  ``batch_rows`` rows or ``flush_seconds``, then acknowledges the last frame written.
- Frames stay in the parent until acknowledged. A failed write is reported back and its rows
  return to the front of the buffer (sending pauses for ``flush_seconds``); rows that no longer
  fit are dropped and counted. A child that dies is restarted and its unacknowledged frames are
  sent again; rows its last transaction did commit are recognised by their unique
  recommendation id and skipped, so a restart neither loses nor duplicates rows.
- ``stop`` sends everything, closes the pipe and waits for the child to write and exit; what it
  could not write is written in-process as a last resort. The child ignores SIGINT and SIGTERM
  (a signal to the whole process group must not kill it before the parent's final frames) and
  exits when its stdin closes, so it never outlives the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.session import sqlite_in_memory
from app.services.exposures import ExposureLog, ExposureRow, Pending, _materialise, write_rows
from app.settings import Settings

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<QI")  # frame number, payload length
_URL_ENV = "FINREC_EXPOSURE_DATABASE_URL"  # the environment, not argv: URLs may hold passwords
_MAX_PIPE_BACKLOG = 4 << 20  # bytes queued for the pipe before rows wait in the buffer instead


class ExposureProcessLog(ExposureLog):
    """:class:`ExposureLog` whose writes happen in a child process (same counters and limits).

    ``pending`` counts rows queued here plus rows sent but not yet acknowledged; both together
    are bounded by ``max_buffer``.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session] | None,
        database_url: str,
        *,
        max_buffer: int = 50_000,
        batch_rows: int = 1_000,
        flush_seconds: float = 1.0,
        send_seconds: float = 0.005,
        restart_seconds: float = 0.5,
        log_level: str = "INFO",
        log_json: bool = False,
    ) -> None:
        super().__init__(
            session_factory,
            max_buffer=max_buffer,
            batch_rows=batch_rows,
            flush_seconds=flush_seconds,
        )
        self._database_url = database_url
        self._log_env = {"FINREC_LOG_LEVEL": log_level, "FINREC_LOG_JSON": str(log_json).lower()}
        self._send_seconds = send_seconds
        self._restart_seconds = restart_seconds
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        # Frames sent but not yet acknowledged, kept as the bytes that were sent (row count
        # beside them): a bytes object is invisible to the garbage collector, whereas the rows
        # themselves would survive long enough (until the child commits, up to
        # ``flush_seconds``) to reach the oldest generation and make its full collections —
        # pauses that grow with everything the process caches — frequent.
        self._in_flight: dict[int, tuple[bytes, int]] = {}
        self._in_flight_rows = 0
        self._frame = 0
        self._paused_until = 0.0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self.restarts = 0

    @property
    def pending(self) -> int:
        return len(self._buffer) + self._in_flight_rows

    @property
    def child_pid(self) -> int | None:
        """The writer process's id (``None`` while none runs)."""
        return None if self._proc is None else self._proc.pid

    def _push(self, row: Pending) -> None:
        if len(self._buffer) + self._in_flight_rows >= self._max_buffer:
            if not self._buffer:
                self.dropped += 1  # everything queued is in flight: the new row cannot fit
                return
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(row)

    def _requeue(self, rows: list[Pending]) -> None:
        """Put rows back at the front of the buffer, dropping (and counting) what cannot fit."""
        room = max(self._max_buffer - self.pending, 0)
        self._buffer.extendleft(reversed(rows[:room]))
        self.dropped += len(rows) - min(room, len(rows))

    # ---- child process ------------------------------------------------------------------------

    async def _spawn(self) -> None:
        env = {
            **os.environ,
            _URL_ENV: self._database_url,
            "FINREC_EXPOSURE_BATCH_ROWS": str(self._batch_rows),
            "FINREC_EXPOSURE_FLUSH_SECONDS": str(self._flush_seconds),
            **self._log_env,
        }
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # Ctrl-C in a terminal reaches the server, not the writer
        )
        self._reader = asyncio.get_running_loop().create_task(self._read_acks(self._proc))

    async def _read_acks(self, proc: asyncio.subprocess.Process) -> None:
        """Settle frames as the child reports them; on its exit, queue the unsettled again."""
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            verdict, _, frame = line.decode(errors="replace").partition(" ")
            if not frame.strip().isdigit():
                log.warning("exposure writer sent an unreadable acknowledgement: %r", line[:80])
                continue  # its frames stay unsettled and are sent again if it exits
            last = int(frame)
            settled = [self._in_flight.pop(n) for n in [n for n in self._in_flight if n <= last]]
            count = sum(n for _, n in settled)
            self._in_flight_rows -= count
            if verdict == "ok":
                self.written += count
            else:
                self.failed_flushes += 1
                self._paused_until = time.monotonic() + self._flush_seconds
                self._requeue(_rows_of(settled))
        code = await proc.wait()
        unsettled = _rows_of([self._in_flight[n] for n in sorted(self._in_flight)])
        self._in_flight.clear()
        self._in_flight_rows = 0
        self._requeue(unsettled)
        if self._proc is proc:
            self._proc = None
        if not self._stopping:
            self.restarts += 1
            log.warning(
                "exposure writer exited with %s; restarting (%d rows re-queued)",
                code,
                len(unsettled),
            )

    def _send(self, limit: int) -> None:
        """Send up to ``limit`` rows as one frame (never blocks: the transport buffers)."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return
        batch: list[Pending] = []
        with contextlib.suppress(IndexError):
            while len(batch) < limit:
                batch.append(self._buffer.popleft())
        if not batch:
            return
        try:
            payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            self._buffer.extendleft(reversed(batch))  # nothing sent: keep every row
            raise
        self._frame += 1
        self._in_flight[self._frame] = (payload, len(batch))
        self._in_flight_rows += len(batch)
        proc.stdin.write(_FRAME.pack(self._frame, len(payload)) + payload)

    def _backlogged(self) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return True
        return proc.stdin.transport.get_write_buffer_size() > _MAX_PIPE_BACKLOG

    async def _run(self) -> None:
        while True:
            if self._proc is None and not self._buffer:
                await asyncio.sleep(self._send_seconds)  # started on the first row, not before
                continue
            if self._proc is None:
                try:
                    await self._spawn()
                except OSError as exc:
                    log.warning("exposure writer could not start; will retry: %s", exc)
                    await asyncio.sleep(self._restart_seconds)
                    continue
            await asyncio.sleep(self._send_seconds)
            if self._buffer and time.monotonic() >= self._paused_until and not self._backlogged():
                try:
                    self._send(self._batch_rows)
                except Exception:
                    # A row the pipe cannot carry (a builder that is not a module-level
                    # function): keep logging rather than lose rows, from a thread as before.
                    log.exception("exposure rows cannot go to the writer process; writing here")
                    await self._write_in_process()
            if self._proc is None:
                await asyncio.sleep(self._restart_seconds)

    async def _write_in_process(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.flush)
            except Exception:  # the loop must survive anything a flush throws
                log.exception("exposure flush crashed")
            await asyncio.sleep(self._flush_seconds)

    def flush(self) -> int:
        """Write everything recorded so far before returning: the buffer in-process, and what
        the child holds by asking it to commit now and waiting for its acknowledgement.

        For callers outside the event loop (tests, a shutdown hook in another thread); on the
        loop's own thread only the buffer can be written without blocking the acknowledgement.
        """
        written = super().flush()
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread or not self._in_flight_rows:
            return written
        loop.call_soon_threadsafe(self._send_commit)
        end = time.monotonic() + 30.0
        while self._in_flight_rows and self._proc is not None and time.monotonic() < end:
            time.sleep(0.005)
        return written

    def _send_commit(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None and proc.returncode is None:
            proc.stdin.write(_FRAME.pack(self._frame, 0))  # an empty frame: commit now

    def start(self) -> None:
        """Start the writer process and the sending loop on the running event loop."""
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout: float = 60.0) -> None:
        """Send everything, let the child write it and exit; write any remainder in-process."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        proc, reader = self._proc, self._reader
        if proc is not None and proc.stdin is not None and proc.returncode is None:
            self._paused_until = 0.0
            while self._buffer:
                self._send(self._batch_rows)
            with contextlib.suppress(OSError):
                proc.stdin.close()
                await proc.stdin.wait_closed()
        if reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(reader), timeout)
            except TimeoutError:
                log.error("exposure writer did not finish in %.0f s; stopping it", timeout)
                if proc is not None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                await reader
        self._proc = self._reader = None
        if self._buffer:
            log.warning("writing %d exposure rows in-process at shutdown", len(self._buffer))
            await asyncio.to_thread(self.flush)


def _rows_of(frames: list[tuple[bytes, int]]) -> list[Pending]:
    """The rows of sent frames, in order (only when they must be queued again)."""
    return [row for payload, _ in frames for row in pickle.loads(payload)]


# ---- the child ------------------------------------------------------------------------------


def _child() -> None:  # pragma: no cover - runs in the child process (tests drive it end to end)
    from app.db.session import make_engine, make_session_factory
    from app.observability.logging import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The server's own log set-up: same format, and database errors lose their bound values
    # (customer ids) before they are written.
    configure_logging(
        os.environ.get("FINREC_LOG_LEVEL", "INFO"),
        json=os.environ.get("FINREC_LOG_JSON", "false") == "true",
    )
    # Acknowledgements get a private copy of stdout; anything printed goes to stderr instead.
    acks = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    batch_rows = int(os.environ.get("FINREC_EXPOSURE_BATCH_ROWS", "1000"))
    flush_seconds = float(os.environ.get("FINREC_EXPOSURE_FLUSH_SECONDS", "1.0"))
    engine = make_engine(os.environ[_URL_ENV], sqlite_write_heavy=True)
    factory = make_session_factory(engine)
    # The rows of a batch live until their commit, so the collector would examine each of them
    # in every generation (a sixth of this process's time under load) though rows hold no
    # cycles. Collection runs after each write instead: the young generation (what the write
    # left behind, its session's cycles included), and everything every 64 writes.
    gc.freeze()
    gc.disable()
    writes = 0
    data = bytearray()
    rows: list[ExposureRow] = []
    last_frame = 0
    deadline: float | None = None
    eof = False
    while True:
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if not eof and select.select([0], [], [], timeout)[0]:
            chunk = os.read(0, 1 << 20)
            eof = not chunk
            data += chunk
            while len(data) >= _FRAME.size:
                frame, size = _FRAME.unpack_from(data)
                if len(data) < _FRAME.size + size:
                    break
                if size == 0:  # the server asks for a commit now (a synchronous flush)
                    del data[: _FRAME.size]
                    deadline = time.monotonic()
                    continue
                batch: list[Pending] = pickle.loads(data[_FRAME.size : _FRAME.size + size])
                del data[: _FRAME.size + size]
                rows.extend(_materialise(item) for item in batch)
                last_frame = frame
                if deadline is None:
                    deadline = time.monotonic() + flush_seconds
        due = deadline is not None and time.monotonic() >= deadline
        if rows and (eof or due or len(rows) >= batch_rows):
            verdict = b"ok"
            try:
                write_rows(factory, rows)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("exposure write failed; rows returned to the server: %s", exc)
                verdict = b"fail"
            acks.write(b"%s %d\n" % (verdict, last_frame))
            rows = []
            writes += 1
            gc.collect(0 if writes % 64 else 2)
        if not rows:
            deadline = None
            if eof:
                break
    engine.dispose()


def exposure_writer(settings: Settings, session_factory: sessionmaker[Session]) -> ExposureLog:
    """The exposure log the settings ask for: ``process`` (default) or ``thread``.

    An in-memory SQLite database exists only inside this process, so it always gets the thread.
    """
    options: dict[str, Any] = {
        "max_buffer": settings.exposure_buffer_size,
        "batch_rows": settings.exposure_batch_rows,
        "flush_seconds": settings.exposure_flush_seconds,
    }
    url: str = settings.database_url
    if settings.exposure_writer == "process" and not sqlite_in_memory(url):
        return ExposureProcessLog(
            session_factory,
            url,
            log_level=settings.log_level,
            log_json=settings.log_json,
            **options,
        )
    return ExposureLog(session_factory, **options)


if __name__ == "__main__":
    _child()
