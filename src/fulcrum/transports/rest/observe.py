"""The outermost REST middleware (pure ASGI): body limit and body idle timeout, trace
context, request id, security headers, the last-resort error answer, metrics, access log.

The body limit counts the bytes actually received, so a chunked body (no Content-Length)
is cut off at the limit like any other. A request refused mid-body, or answered before its
body was read (the gate refuses before reading), is answered with ``Connection: close``:
the rest of its body is never read.

Every error is answered here and never re-raised: an exception that reached uvicorn after
an answer was sent would make it drop the keep-alive connection.

The access log names the route template, never the raw path or query string, so ids and
secrets that callers put in URLs do not reach the logs or the metric labels.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass

import structlog
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulcrum.kit.logging import AccessSample, get_logger
from fulcrum.kit.tracing import current_trace_id, from_traceparent
from fulcrum.observability.metrics import REQUEST_DURATION, REQUESTS
from fulcrum.transports.rest.auth import flatten
from fulcrum.transports.rest.errors import answer, error_body

log = get_logger("fulcrum.access")

MAX_BODY_BYTES = 1 << 20
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
QUIET_ROUTES = {"/healthz", "/readyz"}
DOCS_PAGES = {"/docs", "/docs/oauth2-redirect"}

HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# The Swagger UI page: FastAPI's inline start-up script, its bundle and stylesheet from
# jsDelivr, its favicon; it fetches only /openapi.json from this origin.
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    b"frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # Answers carry key secrets, policies and audit records: never stored by any cache.
    (b"cache-control", b"no-store"),
]


@dataclass
class _Exchange:
    """One request/response as this middleware sees it: the guarded receive and send."""

    scope: Scope
    downstream_receive: Receive
    downstream_send: Send
    body_idle_timeout: float
    extra_headers: list[tuple[bytes, bytes]]
    has_body: bool
    received: int = 0
    body_done: bool = False
    status: int = 0
    started: bool = False
    refused: bool = False  # answered here mid-body; whatever the app sends is dropped

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
            self.status = int(message["status"])
            out = [*message.get("headers", []), *self.extra_headers]
            if self.has_body and not self.body_done:
                out.append((b"connection", b"close"))  # the rest of the body is never read
            message = {**message, "headers": out}
        await self.downstream_send(message)

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        if self.body_done:  # e.g. a streaming answer listening for a disconnect
            return await self.downstream_receive()
        try:
            message = await asyncio.wait_for(self.downstream_receive(), self.body_idle_timeout)
        except TimeoutError:
            return await self.refuse(408, "the request body stalled")
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > MAX_BODY_BYTES:
                return await self.refuse(413, f"request body larger than {MAX_BODY_BYTES} bytes")
            self.body_done = not message.get("more_body", False)
        return message

    async def refuse(self, status: int, message: str) -> Message:
        """Answer now (unless an answer is under way) and cut the app off from the body."""
        if not self.started:
            body = error_body("invalid_argument", message, "body")
            await JSONResponse(body, status)(self.scope, self.downstream_receive, self.send)
        self.refused = True
        return {"type": "http.disconnect"}

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except Exception as exc:
            if self.refused:
                return  # the app stumbled on the body we cut off; the client has its answer
            if not self.started:
                await answer(exc)(self.scope, self.downstream_receive, self.send)
                return
            # The answer was under way (a stream): it cannot become an error any more.
            # Returning lets uvicorn close the connection, which tells the client.
            log.warning("rest.response_aborted", error=type(exc).__name__)


class Observe:
    def __init__(self, app: ASGIApp, *, body_idle_timeout: float, access_log: AccessSample) -> None:
        self.app = app
        self.body_idle_timeout = body_idle_timeout
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        trace = from_traceparent(headers.get("traceparent"))
        offered = headers.get("x-request-id", "")
        request_id = offered if _REQUEST_ID.match(offered) else secrets.token_hex(8)
        extra = [
            (b"traceparent", trace.traceparent.encode()),
            (b"x-request-id", request_id.encode()),
            *SECURITY_HEADERS,
            (b"content-security-policy", DOCS_CSP if scope["path"] in DOCS_PAGES else API_CSP),
        ]
        if scope.get("scheme") == "https":
            extra.append(HSTS)
        declared = headers.get("content-length")
        has_body = declared not in (None, "0") or "transfer-encoding" in headers
        exchange = _Exchange(
            scope, receive, send, self.body_idle_timeout, extra, has_body, body_done=not has_body
        )
        trace_token = current_trace_id.set(trace.trace_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if declared is not None and (
                not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_BODY_BYTES
            ):
                await exchange.refuse(413, "request body too large or malformed length")
            else:
                await exchange.run(self.app)
        finally:
            # Bound by the gate once the caller is authenticated, even if then refused.
            tenant_id = structlog.contextvars.get_contextvars().get("tenant_id")
            current_trace_id.reset(trace_token)
            structlog.contextvars.unbind_contextvars("request_id", "tenant_id")
        elapsed = time.perf_counter() - started
        route = route_template(scope)
        status = exchange.status or 500
        REQUESTS.labels(transport="rest", route=route, code=str(status)).inc()
        REQUEST_DURATION.labels(transport="rest", route=route).observe(elapsed)
        if route not in QUIET_ROUTES and self.access_log.keeps(failed=status >= 400):
            log.info(
                "request",
                transport="rest",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
                tenant_id=tenant_id,
                request_id=request_id,
                trace_id=trace.trace_id,
            )


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    if app is None:
        return "unmatched"
    for candidate in flatten(app.router.routes):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"
