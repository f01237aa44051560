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


def listening_socket() -> socket.socket:
    """A loopback socket on a port the kernel picks: parallel test workers never collide (a
    probed-then-released port can be taken by another worker before uvicorn binds it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextmanager
def running(
    factory: Callable[[], FastAPI], settings: Settings, *, as_finrec_serve: bool = True
) -> Iterator[str]:
    """Serve ``factory()`` and yield its base URL.

    ``as_finrec_serve``: uvicorn configured as ``finrec serve`` configures it; otherwise with
    uvicorn's own defaults (its logging set-up and access log on), as a bare ``uvicorn`` command
    line would run the app factory.
    """
    sock = listening_socket()
    port = int(sock.getsockname()[1])
    options: dict[str, Any]
    if as_finrec_serve:
        options = uvicorn_options(settings, host="127.0.0.1", port=port)
        options.pop("workers"), options.pop("reload")
    else:
        options = {"factory": True, "host": "127.0.0.1", "port": port, "log_level": "debug"}
    server = uvicorn.Server(uvicorn.Config(factory, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
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
        sock.close()
