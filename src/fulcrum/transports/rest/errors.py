"""The one place REST maps errors to HTTP statuses. Bodies never echo input values."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from fulcrum.kit.dependencies import unavailable
from fulcrum.kit.errors import FulcrumError
from fulcrum.kit.logging import get_logger
from fulcrum.ratelimit.limiter import RateLimited

log = get_logger(__name__)

STATUS = {
    "invalid_argument": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "conflict": 409,
    "resource_exhausted": 429,
    "unavailable": 503,
}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"error": error}


def _field_path(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(FulcrumError)
    async def fulcrum_error(_: Request, exc: FulcrumError) -> JSONResponse:
        status = getattr(exc, "http_status", None) or STATUS.get(exc.code, 500)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status, headers)

    @app.exception_handler(RateLimited)
    async def rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), 429, headers=exc.decision.headers())

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _field_path(tuple(first.get("loc", ())))
        message = str(first.get("msg", "invalid value"))
        if first.get("type") == "extra_forbidden":
            message = "unknown field"
        return JSONResponse(error_body("invalid_argument", f"{field}: {message}", field), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 400:
            # FastAPI's JSON body parser failed past json's own errors: an integer beyond
            # int()'s digit limit, or nesting beyond the recursion limit.
            message = "body: cannot be read as JSON (too many digits, or nested too deeply)"
            return JSONResponse(error_body("invalid_argument", message, "body"), 400)
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        down = unavailable(exc)
        if down is not None:
            log.warning("rest.dependency_unavailable", error=type(exc).__name__, exc_info=exc)
            return JSONResponse(error_body(down.code, down.message), 503)
        log.error("rest.unhandled", error=type(exc).__name__, exc_info=exc)
        return JSONResponse(error_body("internal", "internal error"), 500)
