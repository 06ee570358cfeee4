"""One JSON error shape for every failure: ``{"error": {"type", "message", "hint"}}``.

rushhour's typed errors are mapped to HTTP statuses here, once; validation and HTTP errors take the same
shape, so a client parses one format.

>>> status_of(InputError("bad"))
400
>>> body("NotFound", "no series 7", "list them with GET /series")
{'error': {'type': 'NotFound', 'message': 'no series 7', 'hint': 'list them with GET /series'}}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rushhour.errors import (
    ConfigError,
    InputError,
    NotFittedError,
    RushhourError,
    ServiceUnavailable,
    StoreError,
    UsageError,
)

STATUS: list[tuple[type[RushhourError], int]] = [
    (InputError, 400),
    (ConfigError, 400),
    (UsageError, 400),
    (NotFittedError, 409),
    (StoreError, 503),
    (ServiceUnavailable, 503),
]

HTTP_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
    501: "NotImplemented",
    503: "ServiceUnavailable",
}


class ApiError(RushhourError):
    """An error raised by a route with an explicit HTTP status."""

    def __init__(
        self, status: int, message: str, *, hint: str = "", kind: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.kind = kind or HTTP_TYPES.get(status, "Error")


def status_of(exc: RushhourError) -> int:
    """The HTTP status of a typed error (500 for the rest)."""
    if isinstance(exc, ApiError):
        return exc.status
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def body(kind: str, message: str, hint: str = "") -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "hint": hint}}


def _json(status: int, kind: str, message: str, hint: str = "", **headers: str) -> JSONResponse:
    return JSONResponse(body(kind, message, hint), status_code=status, headers=headers or None)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one shape."""

    @app.exception_handler(RushhourError)
    async def _typed(_: Request, exc: RushhourError) -> JSONResponse:
        kind = exc.kind if isinstance(exc, ApiError) else type(exc).__name__
        headers = {"WWW-Authenticate": "Bearer"} if status_of(exc) == 401 else {}
        return _json(status_of(exc), kind, exc.message, exc.hint, **headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return _json(
            422,
            "ValidationError",
            f"{where}: {first.get('msg')}{more}",
            "see /openapi.json for the expected request",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = HTTP_TYPES.get(exc.status_code, "Error")
        hint = "see /openapi.json for the routes" if exc.status_code in (404, 405) else ""
        return _json(exc.status_code, kind, str(exc.detail), hint)
