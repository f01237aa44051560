"""Per-request log context: the request id from the start, the recommendation id once known.

One :class:`RequestContext` per request lives in a context variable set by the middleware. It is
a mutable object rather than one context variable per field so that a value recorded deeper in
the call (the recommendation id, set by the route) is seen by the middleware's access line too,
whatever copies of the context the framework made on the way (thread pools copy it).
"""

from __future__ import annotations

import os
import random
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(slots=True)
class RequestContext:
    """What every log line of one request carries (no customer values: ids of the request only)."""

    request_id: str
    recommendation_id: str | None = None
    key_id: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("finrec_request", default=None)


class _RequestIds:
    """64 random bits per request from a per-process generator, re-seeded in a forked child by
    a fork hook (not by a process-id check on every request)."""

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._bits = random.Random(os.urandom(16)).getrandbits

    def new(self) -> str:
        return f"{self._bits(64):016x}"


new_request_id = _RequestIds().new


def begin(request_id: str) -> tuple[RequestContext, Token[RequestContext | None]]:
    """Start a request's context; pass the token to :func:`end`."""
    context = RequestContext(request_id)
    return context, _current.set(context)


def end(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def current() -> RequestContext | None:
    """The running request's context, or ``None`` outside a request (start-up, refresh loops)."""
    return _current.get()


def bind_recommendation(recommendation_id: str) -> None:
    """Attach the recommendation id to the running request's log lines from here on."""
    context = _current.get()
    if context is not None:
        context.recommendation_id = recommendation_id
