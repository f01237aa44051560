"""Request metrics, request ids and the access log line, as one pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) so the recommendation hot path pays a timer, one wrapped
``send`` and a histogram observation, without an extra task or response copy per request.
"""

from __future__ import annotations

import logging
from contextvars import Token
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import context
from app.observability.metrics import UNMATCHED_ROUTE, Metrics

access_log = logging.getLogger("finrec.access")

REQUEST_ID_HEADER = b"x-request-id"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/customers/{customer_id}/...``), never the path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def _key_id(scope: Scope) -> str | None:
    """The authenticated key's id, when the auth dependency recorded a principal."""
    principal: Any = scope.get("state", {}).get("principal")
    if principal is None:
        return None
    key_id = getattr(principal, "key_id", None)
    if key_id is None and isinstance(principal, dict):
        key_id = principal.get("key_id")
    return None if key_id is None else str(key_id)


class RequestObserver:
    """The steps around every HTTP request: its start (time, request id, log context) and its
    end (duration by route template and status, the access line). Shared by the
    :class:`Observability` middleware and the lane that answers the hot route ahead of it."""

    def __init__(self, metrics: Metrics, *, access_log_enabled: bool = True) -> None:
        self.metrics = metrics
        self.access_log_enabled = access_log_enabled

    @staticmethod
    def begin() -> tuple[float, str, context.RequestContext, Token[Any]]:
        """A request's start: its time, its id and its log context (pass all to ``finish``)."""
        start = perf_counter()
        request_id = context.new_request_id()
        ctx, token = context.begin(request_id)
        return start, request_id, ctx, token

    def finish(
        self,
        scope: Scope,
        status: int,
        start: float,
        ctx: context.RequestContext,
        token: Token[Any],
    ) -> None:
        """A request's end: its duration by route template and status, and the access line."""
        elapsed = perf_counter() - start
        method = scope["method"]
        if method not in _METHODS:
            method = "OTHER"  # a label value per invented method would be unbounded
        route = route_template(scope)
        self.metrics.observe_request(method, route, status, elapsed)
        if self.access_log_enabled and access_log.isEnabledFor(logging.INFO):
            ctx.key_id = _key_id(scope)
            # The route template, never the path or query: both carry customer values.
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
        context.end(token)


class Observability:
    """Times every HTTP request, labels it by route template and status, logs one access line."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics | None = None,
        *,
        access_log_enabled: bool = True,
        observer: RequestObserver | None = None,
    ) -> None:
        if observer is None:
            if metrics is None:
                raise TypeError("Observability needs metrics or an observer")
            observer = RequestObserver(metrics, access_log_enabled=access_log_enabled)
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        observer = self.observer
        start, request_id, ctx, token = observer.begin()
        noted = NotedSend(send, request_id)
        try:
            await self.app(scope, receive, noted)
        finally:
            observer.finish(scope, noted.status, start, ctx, token)


class NotedSend:
    """An ASGI ``send`` that notes the response's status (500 until one starts: what the client
    gets if the app raises before answering) and adds the request id header to it."""

    __slots__ = ("_header", "_send", "status")

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self._header = (REQUEST_ID_HEADER, request_id.encode())
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()), self._header]
        await self._send(message)
