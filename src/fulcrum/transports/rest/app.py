"""The REST application: routers for every domain under ``/v1`` plus health, behind the
observe middleware (outermost), CORS, and the gate that admits requests before their body."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from fulcrum import __version__
from fulcrum.container import Services
from fulcrum.kit.logging import AccessSample
from fulcrum.runtime import Resources
from fulcrum.serving import health
from fulcrum.transports.rest import (
    api_keys,
    audit,
    decisions,
    errors,
    invitations,
    members,
    policies,
    settings,
    tenants,
)
from fulcrum.transports.rest.auth import TENANT_HEADER, Gate
from fulcrum.transports.rest.observe import Observe

PUBLIC_PATHS = {"/healthz", "/readyz"}
DOCS_PATHS = {"/docs", "/docs/oauth2-redirect", "/openapi.json"}
CORS_HEADERS = ["authorization", "content-type", TENANT_HEADER, "x-request-id", "traceparent"]
CORS_EXPOSED = [
    "x-request-id",
    "traceparent",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
]


def create_app(
    resources: Resources,
    services: Services,
    *,
    docs: bool = True,
    cors_origins: Sequence[str] = (),
    body_idle_timeout: float = 15.0,
    access_log_share: float = 1.0,
) -> FastAPI:
    app = FastAPI(
        title="Fulcrum",
        version=__version__,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.resources = resources
    app.state.services = services
    errors.install(app)
    app.include_router(health.router)
    app.include_router(tenants.router)
    app.include_router(members.router)
    app.include_router(invitations.router)
    app.include_router(api_keys.router)
    app.include_router(policies.router)
    app.include_router(decisions.router)
    app.include_router(settings.router)
    app.include_router(audit.router)

    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(Gate, router=app.router, public_paths=PUBLIC_PATHS | DOCS_PATHS)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=CORS_HEADERS,
        expose_headers=CORS_EXPOSED,
        max_age=600,
    )
    app.add_middleware(
        Observe, body_idle_timeout=body_idle_timeout, access_log=AccessSample(access_log_share)
    )
    return app
