"""The REST application: routers for every domain under ``/v1`` plus health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from fulcrum import __version__
from fulcrum.container import Services
from fulcrum.kit.tracing import current_trace_id, from_traceparent
from fulcrum.runtime import Resources
from fulcrum.transports.rest import (
    api_keys,
    decisions,
    errors,
    health,
    members,
    policies,
    settings,
    tenants,
)

MAX_BODY_BYTES = 1 << 20


def create_app(resources: Resources, services: Services) -> FastAPI:
    app = FastAPI(title="Fulcrum", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.resources = resources
    app.state.services = services
    errors.install(app)

    @app.middleware("http")
    async def trace_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            body = errors.error_body(
                "invalid_argument", "request body too large or malformed length"
            )
            return JSONResponse(body, 413)
        trace = from_traceparent(request.headers.get("traceparent"))
        token = current_trace_id.set(trace.trace_id)
        try:
            response = await call_next(request)
        finally:
            current_trace_id.reset(token)
        response.headers["traceparent"] = trace.traceparent
        return response

    app.include_router(health.router)
    app.include_router(tenants.router)
    app.include_router(members.router)
    app.include_router(api_keys.router)
    app.include_router(policies.router)
    app.include_router(decisions.router)
    app.include_router(settings.router)
    return app
