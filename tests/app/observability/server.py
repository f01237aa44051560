"""A real uvicorn server in a thread, on a loopback port, for tests that read the server's logs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.cli.serve import uvicorn_options
from app.settings import Settings

PORTS = range(8830, 8840)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@contextmanager
def running(
    factory: Callable[[], FastAPI], settings: Settings, *, as_finrec_serve: bool = True
) -> Iterator[str]:
    """Serve ``factory()`` and yield its base URL.

    ``as_finrec_serve``: uvicorn configured as ``finrec serve`` configures it; otherwise with
    uvicorn's own defaults (its logging set-up and access log on), as a bare ``uvicorn`` command
    line would run the app factory.
    """
    port = free_port()
    options: dict[str, Any]
    if as_finrec_serve:
        options = uvicorn_options(settings, host="127.0.0.1", port=port)
        options.pop("workers"), options.pop("reload")
    else:
        options = {"factory": True, "host": "127.0.0.1", "port": port, "log_level": "debug"}
    server = uvicorn.Server(uvicorn.Config(factory, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
