"""Logging set-up, in one place: ``finrec serve`` and the app factory both call it.

Every record (the app's stdlib loggers, structlog loggers, uvicorn's error log) goes through one
root handler and one structlog formatter: with ``FINREC_LOG_JSON=true`` one JSON object per
line, otherwise a readable key=value line. Each line of a request carries ``request_id`` and,
once the list is built, ``recommendation_id`` and the caller's ``key_id``.

uvicorn's own access log is switched off: it prints the request path, which holds the customer
id. The middleware writes the access line instead, with the route template.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import orjson
import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from app.observability import context

# uvicorn's loggers: the error log joins the root handler; the access log is replaced.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
_UVICORN_ACCESS = "uvicorn.access"
# HTTP client libraries log every URL at INFO; a URL of this API holds a customer id.
_QUIET_AT_INFO = ("httpx", "httpcore")

# SQLAlchemy puts the statement's bound values into its exception text; those are customer ids
# and profile values, so they are cut out of every line, whoever logs the exception.
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s*(?:\n|\(Background|$))", re.DOTALL)
REDACTED_PARAMETERS = "[parameters: redacted]"


def add_request_context(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Add the running request's ids (a no-op outside requests)."""
    ctx = context.current()
    if ctx is not None:
        event_dict.setdefault("request_id", ctx.request_id)
        if ctx.recommendation_id is not None:
            event_dict.setdefault("recommendation_id", ctx.recommendation_id)
        if ctx.key_id is not None:
            event_dict.setdefault("key_id", ctx.key_id)
    return event_dict


def redact_sql_parameters(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Replace SQLAlchemy's ``[parameters: ...]`` in every text field (message, traceback)."""
    for key, value in event_dict.items():
        if isinstance(value, str) and "[parameters: " in value:
            event_dict[key] = _SQL_PARAMETERS.sub(REDACTED_PARAMETERS, value)
    return event_dict


def drop_formatter_leftovers(
    _logger: WrappedLogger, _name: str, event_dict: EventDict
) -> EventDict:
    """Drop what other formatters left on the record (``message``, ``asctime``; ``event`` has the
    text) and uvicorn's terminal-coloured copy of its message."""
    event_dict.pop("message", None)
    event_dict.pop("asctime", None)
    event_dict.pop("color_message", None)
    return event_dict


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at emit time (unless given a stream), so a replaced
    stderr (test capture, a daemon's redirection) never leaves it writing to a closed file."""

    finrec = True

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns it; the property decides


def _json_dumps(obj: Any, **options: Any) -> str:
    """orjson instead of ``json.dumps``: a few microseconds less on every line."""
    return orjson.dumps(
        obj, default=options.get("default", repr), option=orjson.OPT_NON_STR_KEYS
    ).decode()


def _shared_processors() -> list[Processor]:
    return [
        add_request_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]


def configure_logging(
    level: str = "INFO", *, json: bool = False, stream: TextIO | None = None
) -> None:
    """Route every logger through one formatter; safe to call again (it replaces its handler).

    ``stream`` defaults to the process's stderr at the time each line is written.
    """
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), drop_formatter_leftovers],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_sql_parameters,
            renderer,
        ],
    )
    handler = _Handler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "finrec", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())

    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    for name in _QUIET_AT_INFO:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    access = logging.getLogger(_UVICORN_ACCESS)
    access.handlers.clear()
    access.propagate = False
    access.disabled = True


def get_logger(name: str) -> Any:
    """A structlog logger (keyword fields become JSON keys)."""
    return structlog.get_logger(name)
