"""REST request middleware: body-size guard, trace context, request id, metrics, access log.

The access log names the route template, never the raw path or query string, so ids and
secrets that callers put in URLs do not reach the logs or the metric labels.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable

import structlog
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import Match

from fulcrum.kit.logging import get_logger
from fulcrum.kit.tracing import current_trace_id, from_traceparent
from fulcrum.observability.metrics import REQUEST_DURATION, REQUESTS
from fulcrum.transports.rest.errors import error_body

log = get_logger("fulcrum.access")

MAX_BODY_BYTES = 1 << 20
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
QUIET_ROUTES = {"/healthz", "/readyz"}

CallNext = Callable[[Request], Awaitable[Response]]


def route_template(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for candidate in request.app.router.routes:
        match, _ = candidate.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


async def observe(request: Request, call_next: CallNext) -> Response:
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        body = error_body("invalid_argument", "request body too large or malformed length")
        return JSONResponse(body, 413)
    started = time.perf_counter()
    trace = from_traceparent(request.headers.get("traceparent"))
    offered = request.headers.get("x-request-id", "")
    request_id = offered if _REQUEST_ID.match(offered) else secrets.token_hex(8)
    trace_token = current_trace_id.set(trace.trace_id)
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await call_next(request)
    finally:
        current_trace_id.reset(trace_token)
        structlog.contextvars.unbind_contextvars("request_id")
    elapsed = time.perf_counter() - started
    route = route_template(request)
    REQUESTS.labels(transport="rest", route=route, code=str(response.status_code)).inc()
    REQUEST_DURATION.labels(transport="rest", route=route).observe(elapsed)
    response.headers["traceparent"] = trace.traceparent
    response.headers["x-request-id"] = request_id
    if route not in QUIET_ROUTES:
        log.info(
            "request",
            transport="rest",
            method=request.method,
            route=route,
            status=response.status_code,
            duration_ms=round(elapsed * 1000, 3),
            tenant_id=getattr(request.state, "tenant_id", None),
            request_id=request_id,
            trace_id=trace.trace_id,
        )
    return response
