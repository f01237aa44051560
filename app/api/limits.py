"""Request limits: an oversized body is refused with 413 problem+json before parsing, and a NUL
character in the path or query with the usual 422 validation problem (no id or value may hold
one, and PostgreSQL cannot store or even compare text containing it)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import problem_response

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodySizeLimit:
    """Pure ASGI middleware, so the hot GET path pays one dict lookup and nothing else.

    A declared ``Content-Length`` over the limit is refused at once; a body without one (chunked)
    is read up to the limit and replayed to the app, or refused as soon as it grows past it.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await _nul_refused(scope, receive, send)
            return
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if length is not None and length > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return
        if length is not None or (not chunked and scope["method"] in _NO_BODY_METHODS):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "body-too-large",
            f"request body exceeds {self.max_body_bytes} bytes",
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


async def _nul_refused(scope: Scope, receive: Receive, send: Send) -> None:
    fields = [
        name
        for name, value in parse_qsl(scope["query_string"].decode("latin-1"), True)
        if "\x00" in name or "\x00" in value
    ]
    located = [("query", name.replace("\x00", "")) for name in fields]
    if "\x00" in scope["path"] or not located:
        located.insert(0, ("path", "path"))
    response = problem_response(
        422,
        "validation-error",
        f"invalid request: {', '.join(sorted({name for _, name in located}))}",
        instance=scope["path"].replace("\x00", "%00"),
        errors=[
            {"field": name, "location": where, "message": "must not contain a NUL character"}
            for where, name in located
        ],
    )
    await response(scope, receive, send)
