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

# In match order: the decision path first, as the router tries routes one by one (no two
# routes of different routers can match one request, so the order changes nothing else).
ROUTERS = [
    decisions.router,
    health.router,
    tenants.router,
    members.router,
    invitations.router,
    api_keys.router,
    policies.router,
    settings.router,
    audit.router,
]
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
    for domain in ROUTERS:
        # The routes themselves, not the router: FastAPI matches an included router's
        # routes through a wrapper per router on every request, which costs the decision
        # path more than the decision. Each route already carries its prefix and tags.
        app.router.routes.extend(domain.routes)

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
