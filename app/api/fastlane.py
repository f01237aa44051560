"""A lean ASGI lane for the hot route, in front of the whole FastAPI application.

``GET /v1/customers/{customer_id}/recommendations`` with a plain query (what
:func:`~app.api.recommendations._plain_query` accepts: ``k``, ``channel``, ``placement``) and no
body is answered here with the route's own flow and rendering
(:func:`~app.api.recommendations.answer_plain`: the same service call, metrics, log tag and
bytes as :func:`~app.api.recommendations.get_recommendations`), sent as two raw ASGI messages.
:class:`FinrecAPI` asks the lane first, before Starlette's middleware stack, so what the stack
and FastAPI would add per request — the error, telemetry and body-limit layers and their send
wrappers, dependency solving, parameter validation, the exit stack, routing over every route, a
``Request`` and a ``Response`` object — is skipped because for this request it has nothing to
do. Each distinct query string is parsed once per lane (a bounded map: clients send few).
Everything else (other routes, other methods, any other query, a body, an id FastAPI would
refuse, a NUL character the size-limit layer refuses) goes to the stack untouched, so the route
stays declared there with its OpenAPI description and remains the one full path.

What the stack's layers do for a request that reaches the route, the lane does itself, the same
way: the observability middleware's steps (:meth:`~app.observability.middleware.RequestObserver.
begin` and ``finish``: request id header, metrics by route template, access line), the route's
API-key guard (:func:`app.api.auth.require_scope`: same check, same answers; a route with any
other dependency is never taken by the lane), and error answers — FastAPI's own exception
middleware over the app's own handlers for handled errors, and for anything else what Starlette's
outermost error middleware does (the app's 500 handler, then the exception propagates to the
server). Problem responses are the same bytes either way.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import recommendations
from app.api.auth import check_asgi, guard_scopes, token_of
from app.api.recommendations import answer_plain, plain_request
from app.observability.middleware import REQUEST_ID_HEADER, NotedSend, RequestObserver
from app.services.recommend.service import RecommendRequest

ROUTE_PATH = "/v1/customers/{customer_id}/recommendations"
_PREFIX = "/v1/customers/"
_SUFFIX = "/recommendations"
_MAX_ID = 64  # the route's ``Path(max_length=64)``: longer ids go to FastAPI for its 422

Endpoint = Callable[..., Awaitable[Response]]


def customer_id_of(path: str) -> str | None:
    """The customer id of a recommendations path FastAPI would accept, else ``None``."""
    if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
        return None
    customer_id = path[len(_PREFIX) : -len(_SUFFIX)]
    if not customer_id or "/" in customer_id or len(customer_id) > _MAX_ID:
        return None
    return customer_id


_QUERIES = 4096  # distinct query strings remembered per lane; clients send few


class FastLane:
    """Answers the plain recommendations request without the application's per-request
    machinery; see the module docstring for what it takes and what it passes on."""

    def __init__(self, observer: RequestObserver) -> None:
        self.observer = observer
        self.answered = 0  # requests this lane answered (the rest went to FastAPI)
        self._built = False
        self._route: APIRoute | None = None
        self._endpoint: Endpoint | None = None
        self._errors: ASGIApp | None = None
        self._server_error: Callable[..., Awaitable[Response]] | None = None
        self._scopes: list[str] = []  # what the route's own guards require, checked here too
        # (query string, default k) -> the service request it asks for, or None (not plain):
        # the query is parsed once per distinct string, not once per request.
        self._queries: dict[tuple[bytes, int], RecommendRequest | None] = {}

    def _params(self, query_string: bytes, default_k: int) -> RecommendRequest | None:
        key = (query_string, default_k)
        try:
            return self._queries[key]
        except KeyError:
            pass
        params = plain_request(query_string, default_k)
        queries = self._queries
        if len(queries) >= _QUERIES:
            queries.pop(next(iter(queries)))  # oldest first (dicts keep insertion order)
        queries[key] = params
        return params

    async def __call__(self, app: FastAPI, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer ``scope`` if it is the lane's request (``True``), else leave it (``False``)."""
        if (
            scope["method"] != "GET"
            or scope.get("root_path")
            or (customer_id := customer_id_of(scope["path"])) is None
            or "\x00" in customer_id
        ):
            return False
        state = app.state
        settings = getattr(state, "settings", None)
        if settings is None:  # not started
            return False
        query_string: bytes = scope["query_string"]
        params = self._params(query_string, settings.default_k)
        if params is None or b"%00" in query_string:
            return False
        for name, _ in scope["headers"]:
            if name == b"content-length" or name == b"transfer-encoding":
                return False  # a body: the size limit and the route decide
        if not self._built:
            self._build(app)
        endpoint = self._endpoint
        if endpoint is None:  # not declared in this app
            return False
        scope["app"] = app
        # What the router records on a match: the metrics label the route template from it.
        scope["route"] = self._route
        scope["endpoint"] = endpoint
        scope["path_params"] = {"customer_id": customer_id}
        self.answered += 1
        observer = self.observer
        started, request_id, ctx, token = observer.begin()
        status = 500  # what the client gets if the answer fails before it starts
        try:
            try:
                if self._scopes:  # the route's dependencies are API-key guards only
                    bearer = token_of(scope["headers"])
                    for required in self._scopes:
                        await check_asgi(scope, state, required, bearer)
                # The route's own flow and bytes (see ``get_recommendations``), as raw
                # messages: no Request, no Response object, no header re-encoding.
                start, body = await answer_plain(
                    state.serving, getattr(state, "metrics", None), customer_id, params
                )
            except Exception as exc:
                status = await self._answer_error(scope, receive, send, exc, request_id)
                return True
            start["headers"].append((REQUEST_ID_HEADER, request_id.encode()))
            status = 200
            await send(start)
            await send(body)
        finally:
            observer.finish(scope, status, started, ctx, token)
        return True

    async def _answer_error(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception, request_id: str
    ) -> int:
        """Answer ``exc`` as the stack would; returns the status sent (re-raises the
        unexpected, after the 500 answer, as Starlette's error middleware does)."""
        noted = NotedSend(send, request_id)
        scope[_RAISED] = exc
        assert self._errors is not None
        try:
            # FastAPI's own exception middleware over the app's own handlers.
            await self._errors(scope, receive, noted)
        except Exception as unexpected:
            # Starlette's outermost error middleware: the app's 500 handler answers (outside
            # the observability layer, so without a request id header), then the server logs
            # the exception.
            assert self._server_error is not None
            response = await self._server_error(Request(scope), unexpected)
            await response(scope, receive, send)
            raise
        return noted.status

    def _build(self, app: FastAPI) -> None:
        """Find the declared route and the app's exception handling (once, on first use)."""
        self._built = True
        # The router records the declared route object itself on the scope, so take it from
        # the module's router, once the app is known to serve it at this path.
        try:
            served = app.url_path_for("get_recommendations", customer_id="x")
        except NoMatchFound:
            return
        route = next((r for r in recommendations.router.routes if isinstance(r, APIRoute)), None)
        if route is None or served != _PREFIX + "x" + _SUFFIX or route.path != ROUTE_PATH:
            return
        scopes = guard_scopes(route)
        if scopes is None:  # a dependency the lane cannot run: leave the route to FastAPI
            return
        server_error = app.exception_handlers.get(500) or app.exception_handlers.get(Exception)
        if server_error is None or not inspect.iscoroutinefunction(server_error):
            return  # no handler the lane can await: Starlette's middleware answers
        self._server_error = server_error
        self._scopes = scopes
        handlers: dict[Any, Any] = {
            key: handler
            for key, handler in app.exception_handlers.items()
            if key not in (500, Exception)  # those belong to the outermost error middleware
        }
        self._errors = ExceptionMiddleware(_reraise, handlers=handlers, debug=app.debug)
        self._route = route
        self._endpoint = route.endpoint


class FinrecAPI(FastAPI):
    """The application: FastAPI with the hot route's lane asked first (when one is set)."""

    fast_lane: FastLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.fast_lane
        if (
            lane is not None
            and scope["type"] == "http"
            and not self.root_path
            and await lane(self, scope, receive, send)
        ):
            return
        await super().__call__(scope, receive, send)


_RAISED = "finrec.fastlane.raised"


async def _reraise(scope: Scope, receive: Receive, send: Send) -> None:
    raise scope.pop(_RAISED)
