"""One logging set-up: JSON or plain lines, request and recommendation ids, nothing leaked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from fastapi.testclient import TestClient

from app.observability import context
from app.observability.logging import REDACTED_PARAMETERS, configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("DEBUG", json=True, stream=buffer)
    yield buffer
    configure_logging()


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_stdlib_structlog_and_uvicorn_records_become_json_lines(stream: io.StringIO) -> None:
    logging.getLogger("app.services.x").warning("catalogue %s", "refreshed", extra={"rows": 3})
    structlog.get_logger("app.services.y").info("activated", strategy="als")
    logging.getLogger("uvicorn.error").info("started", extra={"color_message": "\x1b[36m"})
    first, second, third = lines(stream)
    assert first["event"] == "catalogue refreshed" and first["level"] == "warning"
    assert first["logger"] == "app.services.x" and first["rows"] == 3 and "ts" in first
    assert second["event"] == "activated" and second["strategy"] == "als"
    assert third["logger"] == "uvicorn.error" and "color_message" not in third


def test_lines_inside_a_request_carry_its_ids(stream: io.StringIO) -> None:
    ctx, token = context.begin("0123456789abcdef")
    try:
        logging.getLogger("app").info("before the list")
        context.bind_recommendation("f" * 32)
        logging.getLogger("app").info("after the list")
    finally:
        context.end(token)
    logging.getLogger("app").info("outside")
    before, after, outside = lines(stream)
    assert before["request_id"] == "0123456789abcdef" and "recommendation_id" not in before
    assert after["recommendation_id"] == "f" * 32
    assert "request_id" not in outside and ctx.recommendation_id == "f" * 32


def test_sql_parameters_are_cut_from_messages_and_tracebacks(stream: io.StringIO) -> None:
    error = (
        "(sqlite3.OperationalError) no such table: exposures\n"
        "[SQL: INSERT INTO exposures (customer_id) VALUES (?)]\n"
        "[parameters: [('CUST-SECRET', '[{\"p\": 1}]'), ('CUST-OTHER',)]]\n"
        "(Background on this error at: https://sqlalche.me/e/20/e3q8)"
    )
    logging.getLogger("app").warning("flush failed: %s", error)
    try:
        raise RuntimeError(error)
    except RuntimeError:
        logging.getLogger("app").exception("crashed")
    text = stream.getvalue()
    assert "CUST-" not in text
    assert text.count(REDACTED_PARAMETERS) == 2
    assert "[SQL: INSERT INTO exposures" in text  # the statement itself stays, for diagnosis


def test_plain_mode_is_one_readable_line_per_record() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", json=False, stream=buffer)
    try:
        logging.getLogger("app").info("ready", extra={"strategies": 2})
        logging.getLogger("app").debug("not at INFO")
    finally:
        configure_logging()
    (line,) = buffer.getvalue().splitlines()
    assert "ready" in line and "strategies=2" in line and "info" in line


def test_configuring_again_replaces_the_handler_and_mutes_uvicorn_access() -> None:
    configure_logging("INFO", json=True)
    configure_logging("INFO", json=False)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "finrec", False)]
    assert len(ours) == 1
    assert logging.getLogger("uvicorn.access").disabled
    assert logging.getLogger("httpx").level >= logging.WARNING


def test_the_access_line_names_the_route_and_the_recommendation(
    obs_client: TestClient, stream: io.StringIO
) -> None:
    configure_logging("INFO", json=True, stream=stream)  # the app factory reconfigured it
    response = obs_client.get("/v1/customers/C2/recommendations", params={"k": 3})
    (access,) = [line for line in lines(stream) if line["logger"] == "finrec.access"]
    assert access["route"] == "/v1/customers/{customer_id}/recommendations"
    assert access["status"] == 200 and isinstance(access["duration_ms"], float)
    assert access["recommendation_id"] == response.json()["recommendation_id"]
    assert access["request_id"] == response.headers["x-request-id"]
    assert access["key_id"] == "a00000000001"  # the admin test key's id, never its secret
    assert "secret" not in stream.getvalue()
    assert "C2" not in stream.getvalue()


def test_request_ids_are_reseeded_in_a_forked_child() -> None:
    import os

    from app.observability import context

    generator = context.new_request_id.__self__  # type: ignore[attr-defined]
    inherited = generator._bits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: its own seed, not a copy of the parent's
        os.write(write, b"1" if generator._bits is not inherited else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert generator._bits is inherited  # the parent keeps its generator
    assert len(context.new_request_id()) == 16
