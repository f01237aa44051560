"""A lean ASGI lane for the hot route, in front of FastAPI's router.

``GET /v1/customers/{customer_id}/recommendations`` with a plain query (what
:func:`~app.api.recommendations._plain_query` accepts: ``k``, ``channel``, ``placement``) is
answered here with the route's own flow and rendering
(:func:`~app.api.recommendations.answer_plain`: the same service call, metrics, log tag and
bytes as :func:`~app.api.recommendations.get_recommendations`), sent as two raw ASGI messages;
what FastAPI would add per request — dependency solving, parameter validation, the exit stack,
routing over every route, a ``Request`` and a ``Response`` object — is skipped because for this
request it has nothing to do. Each distinct query string is parsed once per lane (a bounded
map: clients send few). Everything else (other routes, other methods, any other query, an id
FastAPI would refuse) goes to FastAPI untouched, so the route stays declared there with its
OpenAPI description and remains the one full path.

The route's API-key guard (:func:`app.api.auth.require_scope`) runs here as well, the same
check with the same answers; a route with any other dependency is never taken by the lane.

Errors raised on the lane are answered by FastAPI's own exception middleware built over the
app's own handlers, so problem responses are the same bytes either way. The lane is added as the
innermost user middleware: the observability middleware (metrics, request id, access line) and
the body size limit see every request it answers, and the route template is recorded on the
scope exactly as the router would record it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Response
from fastapi.routing import APIRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import recommendations
from app.api.auth import check_asgi, guard_scopes, token_of
from app.api.recommendations import answer_plain, plain_request
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
    """Pure ASGI middleware answering the plain recommendations request without FastAPI's
    per-request machinery; see the module docstring for what it takes and what it passes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # requests this lane answered (the rest went to FastAPI)
        self._built = False
        self._route: APIRoute | None = None
        self._endpoint: Endpoint | None = None
        self._errors: ASGIApp | None = None
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("root_path")
            or (customer_id := customer_id_of(scope["path"])) is None
        ):
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        state = app.state
        settings = getattr(state, "settings", None)
        params = self._params(
            scope["query_string"], settings.default_k if settings is not None else 10
        )
        if params is None:
            await self.app(scope, receive, send)
            return
        if not self._built:
            self._build(app)
        endpoint = self._endpoint
        if endpoint is None or settings is None:  # not declared in this app / not started
            await self.app(scope, receive, send)
            return
        # What the router records on a match: the metrics label the route template from it.
        scope["route"] = self._route
        scope["endpoint"] = endpoint
        scope["path_params"] = {"customer_id": customer_id}
        self.answered += 1
        try:
            if self._scopes:  # the route's dependencies are API-key guards only
                token = token_of(scope["headers"])
                for required in self._scopes:
                    await check_asgi(scope, state, required, token)
            # The route's own flow and bytes (see ``get_recommendations``), as raw messages:
            # no Request, no Response object, no header re-encoding.
            start, body = await answer_plain(
                state.serving, getattr(state, "metrics", None), customer_id, params
            )
        except Exception as exc:
            # Answered by FastAPI's own exception middleware over the app's own handlers (what
            # it does not handle propagates to the outermost error middleware, as it would).
            scope[_RAISED] = exc
            assert self._errors is not None
            await self._errors(scope, receive, send)
            return
        await send(start)
        await send(body)

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
        self._scopes = scopes
        handlers: dict[Any, Any] = {
            key: handler
            for key, handler in app.exception_handlers.items()
            if key not in (500, Exception)  # those belong to the outermost error middleware
        }
        self._errors = ExceptionMiddleware(_reraise, handlers=handlers, debug=app.debug)
        self._route = route
        self._endpoint = route.endpoint


_RAISED = "finrec.fastlane.raised"


async def _reraise(scope: Scope, receive: Receive, send: Send) -> None:
    raise scope.pop(_RAISED)
