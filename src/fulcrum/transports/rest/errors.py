"""The one place REST maps errors to HTTP statuses. Bodies never echo input values."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from fulcrum.kit.dependencies import TRANSACTION_CONFLICTS, dependency_error
from fulcrum.kit.errors import FulcrumError
from fulcrum.kit.logging import get_logger

log = get_logger(__name__)

STATUS = {
    "invalid_argument": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "conflict": 409,
    "resource_exhausted": 429,
    "overloaded": 503,
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


def answer(exc: Exception) -> JSONResponse:
    """The response for an error raised anywhere in a request: a route, the gate, a store."""
    if isinstance(exc, FulcrumError):
        status = STATUS.get(exc.code, 500)
        headers = dict(exc.headers)
        if exc.retry_after_seconds is not None:
            headers["Retry-After"] = str(exc.retry_after_seconds)
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status, headers)
    known = dependency_error(exc)
    if known is not None:
        # A known outage (503) or a transaction that lost to a concurrent one (409, retry):
        # answered and counted in the access log, no traceback.
        if known.code == "conflict":
            log.info("rest.transaction_conflict", error=type(exc).__name__)
        else:
            log.warning("rest.dependency_unavailable", error=type(exc).__name__)
        return JSONResponse(error_body(known.code, known.message), STATUS[known.code])
    log.error("rest.unhandled", error=type(exc).__name__, exc_info=exc)
    return JSONResponse(error_body("internal", "internal error"), 500)


def install(app: FastAPI) -> None:
    """Route-level handlers. Errors no handler takes reach the observe middleware, which
    answers with :func:`answer` too (Starlette's own last-resort handler would answer and
    then re-raise, and uvicorn would drop the keep-alive connection)."""

    async def known(_: Request, exc: Exception) -> JSONResponse:
        return answer(exc)

    # Domain errors, and transactions that lost a race (409, retry), are answered at the
    # route like any refusal.
    error_types: tuple[type[Exception], ...] = (FulcrumError, *TRANSACTION_CONFLICTS)
    for error_type in error_types:
        app.add_exception_handler(error_type, known)

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
