"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.services.errors import DomainError
from app.services.recommend.service import NothingToServe

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://finrec.dev/problems/"


class ProblemError(Exception):
    """Raise from a service to answer with a typed problem (``type`` is a stable slug)."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    slug: str,
    detail: str,
    *,
    instance: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _slug_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")
    except ValueError:
        return "error"


async def _problem_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.slug,
        exc.detail,
        instance=request.url.path,
        title=exc.title,
        headers=exc.headers,
        **exc.extra,
    )


_BODY_PARSE_FAILED = "There was an error parsing the body"


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _BODY_PARSE_FAILED:
        # FastAPI answers 400 for a body that is not UTF-8 but 422 for one that is not JSON;
        # both are the same client mistake, so both get the documented validation problem.
        return problem_response(
            422,
            "validation-error",
            "invalid request: body",
            instance=request.url.path,
            errors=[{"field": "body", "location": "body", "message": "body is not valid JSON"}],
        )
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(
        exc.status_code,
        _slug_for(exc.status_code),
        detail,
        instance=request.url.path,
        headers=getattr(exc, "headers", None),
    )


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(part) for part in err.get("loc", ()) if part != "body") or "body",
            "location": str(err.get("loc", ("body",))[0]),
            "message": err.get("msg", "invalid"),
        }
        for err in exc.errors()
    ]
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        422,
        "validation-error",
        f"invalid request: {fields}",
        instance=request.url.path,
        errors=errors,
    )


async def _domain_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(exc.status, exc.slug, exc.detail, instance=request.url.path)


async def _nothing_to_serve_handler(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        503,
        "unavailable",
        f"nothing can serve right now: {exc}",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


async def _data_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value that validation let through (a NUL byte inside a JSON
    # string, a number out of the column's range; SQLite's driver raises OverflowError for an
    # integer past 64 bits): the client's input, so a 422, not a 500.
    return problem_response(
        422,
        "invalid-value",
        "a value in the request cannot be stored or compared by the database",
        instance=request.url.path,
    )


async def _unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        500, "internal-error", "an internal error occurred", instance=request.url.path
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(DomainError, _domain_handler)
    app.add_exception_handler(NothingToServe, _nothing_to_serve_handler)
    app.add_exception_handler(DataError, _data_error_handler)
    app.add_exception_handler(OverflowError, _data_error_handler)
    app.add_exception_handler(Exception, _unhandled_handler)
