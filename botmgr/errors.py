"""One error hierarchy for the service and the handlers that turn it into the original's
JSON shapes: ``{"status":"error","message":…}`` under ``/bots``, ``{"message":…}``
everywhere else. Services raise these, never ``HTTPException``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """Every error answer: ``message``, plus ``status: "error"`` under /bots and, where
    useful, more fields (``errors`` for 422, ``binding_id`` for a 409 …)."""

    model_config = ConfigDict(extra="allow")
    message: str
    status: Literal["error"] | None = None


# Documented on every router so the OpenAPI schema lists each status a route can answer.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "missing or wrong credentials"),
        (429, "too many failed logins from this address or for this username (Retry-After)"),
        (404, "unknown id"),
        (409, "conflict with the current state"),
        (422, "malformed request"),
        (503, "Telegram, the database or the queue refused or is unreachable"),
    )
}


class AppError(Exception):
    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class Invalid(AppError):
    status_code = 422


class Unavailable(AppError):
    """Telegram (or another dependency) refused or could not be reached."""

    status_code = 503


class Unauthorized(AppError):
    status_code = 401


class TooManyAttempts(AppError):
    """Too many failed logins from this address or for this username (botmgr/throttle.py)."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


def error_body(path: str, message: str, **extra: Any) -> dict[str, Any]:
    if path.startswith("/bots"):
        return {"status": "error", "message": message, **extra}
    return {"message": message, **extra}


def _json(
    request: Request,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Basic realm="botmgr"'}
    return JSONResponse(error_body(request.url.path, message, **extra), status, headers)


def validation_message(
    raw: Sequence[Mapping[str, Any]],
) -> tuple[str, list[dict[str, Any]]]:
    """A 422's ``message`` (the first error, ``where: what``) and ``errors``, from
    pydantic's errors; the console shows its form's errors in the same words."""
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in raw]
    first: dict[str, Any] = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body")
    return (f"{where}: {first['msg']}" if where else first["msg"]), errors


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
            return _json(request, exc.status_code, exc.message, headers)
        return _json(request, exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, errors = validation_message(exc.errors())
        return _json(request, 422, message, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _json(request, exc.status_code, str(exc.detail))

    @app.exception_handler(DBAPIError)
    async def _db(request: Request, exc: DBAPIError) -> JSONResponse:
        # Input that slipped past validation (e.g. a number out of range) is the
        # caller's fault; a lost database is ours but still answered in JSON.
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        if sqlstate.startswith("22"):
            return _json(request, 422, "value out of range or malformed")
        log.error(
            "database error on %s: %s (sqlstate %s)",
            request.url.path,
            type(exc.orig).__name__,
            sqlstate or "-",
        )
        return _json(request, 503, "database unavailable")

    async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
        log.error("dependency unreachable on %s: %s", request.url.path, type(exc).__name__)
        return _json(request, 503, "service temporarily unavailable (database or queue)")

    # A database or Redis that cannot be reached surfaces as these, not as DBAPIError.
    for exc_type in (OSError, TimeoutError, SATimeoutError, RedisError):
        app.add_exception_handler(exc_type, _unreachable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _json(request, 500, "internal error")
