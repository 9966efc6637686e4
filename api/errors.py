"""Every error is JSON with a ``detail``: FastAPI-style lists for bad input, a sentence otherwise.

The database being unreachable is a 503, anything unexpected a 500 without a stack trace.
"""

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.db import UNREACHABLE

log = logging.getLogger(__name__)
DB_UNAVAILABLE = "Database unavailable; try again shortly"


class ApiError(Exception):
    """An answer other than success: status code, ``detail`` and optional extra body fields."""

    def __init__(
        self,
        status_code: int,
        detail: Any,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> JSONResponse:
        body = {**self.extra, "detail": self.detail}
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


class ValidationFailed(ApiError):
    """422 with FastAPI's ``detail`` list, one item per bad field."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(422, items)


def invalid(
    loc: Sequence[str | int],
    msg: str,
    *,
    type: str,
    input: Any = None,
    ctx: dict[str, Any] | None = None,
) -> ValidationFailed:
    """A 422 naming one bad field, in the shape of FastAPI's own items."""
    item: dict[str, Any] = {"type": type, "loc": list(loc), "msg": msg, "input": input}
    if ctx is not None:
        item["ctx"] = ctx
    return ValidationFailed([item])


def not_found(what: str = "Generation") -> ApiError:
    return ApiError(404, f"{what} not found")


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def error_items(
    exc: ValidationError | RequestValidationError, *, loc: Sequence[str | int] = ()
) -> list[dict[str, Any]]:
    """Pydantic errors as FastAPI answers them, ``loc`` prefixed, always JSON-serialisable."""
    raw = exc.errors(include_url=False) if isinstance(exc, ValidationError) else exc.errors()
    items = []
    for err in raw:
        item: dict[str, Any] = {
            "type": err["type"],
            "loc": [*loc, *err["loc"]],
            "msg": err["msg"],
            "input": _json_safe(err.get("input")),
        }
        if err.get("ctx"):
            item["ctx"] = _json_safe(err["ctx"])
        items.append(item)
    return items


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    async def on_request_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": error_items(exc)}, status_code=422)

    async def on_db_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return JSONResponse(
            {"detail": DB_UNAVAILABLE}, status_code=503, headers={"Retry-After": "5"}
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "Internal server error"}, status_code=500)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_request_invalid)
    for exc_type in UNREACHABLE:
        app.add_exception_handler(exc_type, on_db_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
