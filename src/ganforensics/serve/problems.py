"""Errors as RFC 9457 problem details (`application/problem+json`), never a traceback.

`Problem` is raised by the routes; `install_handlers` makes every other failure (Starlette's
HTTP errors such as 404, 405 or the body-size 413, request validation, and any unexpected
exception) answer in the same shape.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "https://ganforensics.invalid/problems/"
"""Problem `type` URIs: this prefix plus a slug (documented in docs/serve.md)."""

INVALID_REQUEST = "invalid-request"
"""The `type` slug of a request that is malformed as a request (not as an image)."""
SLUGS = {400: "bad-request", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed",
         413: "too-large", 415: "not-an-image", 422: "unprocessable-image",
         500: "internal-error", 503: "unavailable"}

log = logging.getLogger("ganforensics.serve")


def problem_body(status: int, detail: str, *, title: str | None = None,
                 instance: str | None = None, slug: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    """The members of one problem object (`slug` overrides the status's type slug)."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + (slug or SLUGS.get(status, str(status))),
        "title": title or HTTPStatus(status).phrase,
        "status": int(status),
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


class Problem(Exception):
    """An error answer: status, one-line detail, optional headers and extension members."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, slug: str | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.slug = slug
        self.status = int(status)
        self.detail = detail
        self.title = title
        self.headers = headers or {}
        self.extra = extra

    def response(self, request: Request | None = None) -> JSONResponse:
        """The problem+json response (`instance` is the request's path when given)."""
        path = request.url.path if request is not None else None
        body = problem_body(self.status, self.detail, title=self.title, instance=path,
                            slug=self.slug, **self.extra)
        return JSONResponse(body, status_code=self.status, headers=self.headers,
                            media_type=MEDIA_TYPE)


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response(request)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return Problem(exc.status_code, detail, headers=dict(exc.headers or {})).response(request)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
              for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else first["msg"]
    return Problem(422, detail, title="Invalid request", slug=INVALID_REQUEST,
                   errors=errors).response(request)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s: %s", request.url.path, exc, exc_info=exc)
    return Problem(500, "internal error (logged on the server)").response(request)


def install_handlers(app: FastAPI) -> None:
    """Route every error of `app` through problem+json."""
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unexpected)
